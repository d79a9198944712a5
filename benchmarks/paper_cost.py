"""What the paper's benchmark costs on GPUs: `ppma.paper.plan` over the real lists, as the dry run prints it.

The cards ship every list but four train lists PPMA never published (kinetics150, nohuman_kinetics150,
synthetic150, mini_ssv2); for those this script writes lists of an assumed size (below, with where each comes
from), so the figure is an estimate of the same model the dry run uses on your real lists:

    python benchmarks/paper_cost.py --gpus 8
    python benchmarks/paper_cost.py --gpus 8 --amp bf16      # Align, fine-tuning and probes in bf16 too
"""
import argparse
import tempfile
from pathlib import Path

from ppma.data import read_split
from ppma.cards import card_split, load_card
from ppma.paper import paper_jobs, plan, plan_summary

# train videos of the lists not shipped: SynAPT's kinetics150_train.txt (89,665; the No-Human set is the same
# videos), Synthetic-150 at its stated "up to 1,000 per class", Mini-SSV2 assumed 4x its 11,799 validation videos
ASSUMED_TRAIN = {'kinetics150': 89_665, 'nohuman_kinetics150': 89_665, 'synthetic150': 150_000, 'mini_ssv2': 47_196}


def assumed_root(root):
    "A data root holding only the missing train lists (made-up paths, labels cycling through the card's classes)."
    for name, n in ASSUMED_TRAIN.items():
        (Path(root) / name).mkdir(parents=True, exist_ok=True)
        k = load_card(name)['num_classes']
        (Path(root) / name / 'train.csv').write_text(''.join(f'v{i}.mp4;{i % k}\n' for i in range(n)))
    return root


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--gpus', type=int, default=8)
    p.add_argument('--seeds', type=int, default=2)
    p.add_argument('--amp', help='price every stage at this precision (bf16, fp16, none) instead of its preset\'s')
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as d:
        root = assumed_root(d)
        settings = {'amp': a.amp} if a.amp else None
        table = plan(paper_jobs(Path(d) / 'runs', seeds=tuple(range(a.seeds))), root, gpus=a.gpus, settings=settings)
        counts = {n: len(read_split(card_split(load_card(n), 'train'))) for n in ('ucf101', 'hmdb51', 'ikea_fa')}
    print(table.groupby('stage')[['steps', 'gpu_hours', 'disk_gb']].sum().round(1).to_string())
    print(plan_summary(table, a.gpus))
    print(f'(train videos assumed: {ASSUMED_TRAIN}; shipped lists, e.g. {counts})')


if __name__ == '__main__':
    main()
