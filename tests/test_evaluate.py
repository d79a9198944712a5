"Evaluation protocol, results store and model averaging, end to end on generated videos."
import json, multiprocessing as mp, subprocess, sys
from pathlib import Path

import pytest
import torch

from ppma.checkpoints import load_checkpoint, save_checkpoint
from ppma.evaluate import aggregate, append_result, encoder_states, load_results
from ppma.models import VideoViT
from ppma.training import train

from conftest import TINY


def _append(args):
    path, i = args
    append_result(path, dict(recipe=f'r{i % 3}', dataset='toy', protocol='finetune', seed=i, top1=i / 100, top5=1.0, mean_class=0.5))


def test_concurrent_appends_keep_every_row(tmp_path):
    with mp.get_context('fork').Pool(4) as pool: pool.map(_append, [(tmp_path / 'results.csv', i) for i in range(40)])
    df = load_results(tmp_path)
    assert len(df) == 40 and sorted(df.seed) == list(range(40))
    agg = aggregate(df)
    assert list(agg['top1_count']) == [14, 13, 13]


# the regularised Align this test was written with (tiny-cpu's before it became the small-data preset): it learns the toy
THE_OLD_ALIGN = dict(ref_batch=8, weight_decay=1e-4, layer_decay=0.75, drop_path=0.1, smoothing=0.1, erase_p=0.25, crop_scale=(0.08, 1.0))


def test_learned_mixing_moves_towards_the_better_model(toy, tmp_path):
    good = train('align', data=str(toy), epochs=8, batch_size=6, out_dir=tmp_path / 'good', mixup=0, cutmix=0, lr=3e-3, **THE_OLD_ALIGN, **TINY)
    sd = load_checkpoint(good['checkpoint'])['model']
    g = torch.Generator().manual_seed(0)
    bad = {k: (v[torch.randperm(v.shape[0], generator=g)] if k.startswith('blocks.') and v.ndim == 2 else v) for k, v in sd.items()}
    m = VideoViT(**{**load_checkpoint(good['checkpoint'])['model_args']}); m.load_state_dict(bad)
    save_checkpoint(tmp_path / 'bad.pt', m)
    s = train('average', data=str(toy), init=[tmp_path / 'bad.pt', good['checkpoint']], mix='learned', epochs=6, batch_size=6,
              out_dir=tmp_path / 'avg', lr=5e-2, ref_batch=8, crop_scale=(0.08, 1.0), **TINY)
    w = load_checkpoint(s['checkpoint'])['mixing_weights']
    assert w[1] > 0.55, w                                        # the trained encoder gains weight


def test_ensemble_file_feeds_the_average_stage(toy, tmp_path):
    a, b = (VideoViT(img_size=32, num_frames=4, embed_dim=128, depth=4, num_heads=4) for _ in range(2))
    ens = {'ensemble_weights': [{'trunk.' + k: v for k, v in x.state_dict().items() if k != 'pos_embed'} for x in (a, b)]}
    for s in ens['ensemble_weights']:
        s['trunk.patch_embed.proj.1.weight'] = s.pop('trunk.patch_embed.proj.weight'); s['trunk.patch_embed.proj.1.bias'] = s.pop('trunk.patch_embed.proj.bias')
    torch.save(ens, tmp_path / 'ensemble.pt')
    assert len(encoder_states(tmp_path / 'ensemble.pt')) == 2
    out = train('average', data=str(toy), init=tmp_path / 'ensemble.pt', mix='learned', epochs=1, batch_size=6, out_dir=tmp_path / 'e', **TINY)
    assert 'acc1' in out['val']


def test_evaluate_refuses_a_head_of_another_size(toy, tmp_path):
    save_checkpoint(tmp_path / 'c7.pt', VideoViT(img_size=32, num_frames=4, embed_dim=128, depth=4, num_heads=4, num_classes=7))
    with pytest.raises(ValueError, match='7 classes, toy has 3'):
        train('evaluate', data=str(toy), init=tmp_path / 'c7.pt', out_dir=tmp_path / 'ev', **TINY)


def test_report_notebook_writes_every_figure(tmp_path):
    "A small runs folder made by hand (results, curves, an evaluation, a reconstruction, a removal manifest)."
    import cv2, numpy as np
    runs = tmp_path / 'runs'
    for r, base in (('mae_with_humans', 0.5), ('ppma', 0.6), ('random_init', 0.3)):
        for seed in (0, 1):
            for p in ('linear_probe', 'finetune'):
                append_result(runs / 'results.csv', dict(recipe=r, dataset='toy', protocol=p, seed=seed, top1=base + 0.02 * seed, top5=1.0, mean_class=base))
    (runs / 'mae' / 'reconstructions').mkdir(parents=True)
    cv2.imwrite(str(runs / 'mae' / 'reconstructions' / 'epoch0001.png'), np.full((48, 64, 3), 128, np.uint8))
    (runs / 'mae' / 'metrics.jsonl').write_text(''.join(json.dumps(dict(stage='mae', recipe='mae', epoch=e, step=e, split='train_epoch', loss=1 - e / 10)) + '\n' for e in range(3)))
    (runs / 'lp' ).mkdir()
    (runs / 'lp' / 'eval-toy.json').write_text(json.dumps(dict(dataset='toy', top1=0.5, mean_class=0.5, videos=4, confusion=[[1, 1], [1, 1]], classes=['a', 'b'])))
    (runs / 'nohuman' / 'previews').mkdir(parents=True)
    cv2.imwrite(str(runs / 'nohuman' / 'previews' / 'v.mp4.png'), np.full((30, 90, 3), 200, np.uint8))
    (runs / 'nohuman' / 'manifest.jsonl').write_text(json.dumps(dict(path='v.mp4', status='ok', preview='previews/v.mp4.png', detections_before=5, detections_after=0)) + '\n')
    out = tmp_path / 'report'
    nb = Path(__file__).resolve().parents[1] / 'nbs' / 'report.ipynb'
    r = subprocess.run([sys.executable, '-m', 'papermill', str(nb), str(tmp_path / 'out.ipynb'), '-k', 'python3', '-p', 'runs_dir', str(runs),
                        '-p', 'out_dir', str(out), '-p', 'reference', 'mae_with_humans'], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    for name in ('1_top1_by_recipe', '2_gap_to_real_humans', '3_mae_reconstruction', '4_human_removal', '5_training_curves', '6_confusion'):
        im = cv2.imread(str(out / f'{name}.png'))
        assert im is not None and im.shape[0] > 100 and im.std() > 5, name
        assert (out / f'{name}.svg').stat().st_size > 1000
    table = (out / 'results_table.md').read_text()
    assert table.count('\n') == 2 + 6 and '| ppma | toy | finetune | 61.0 |' in table


def test_result_figure_has_one_bar_per_recipe_and_dataset():
    import pandas as pd
    from ppma.figures import plot_results, plot_gap
    df = pd.DataFrame([dict(recipe=r, dataset=d, protocol=p, seed=s, top1=0.5) for r in ('a', 'b', 'c') for d in ('x', 'y')
                       for p in ('linear_probe', 'finetune') for s in (0, 1)])
    fig = plot_results(df)
    assert len(fig.axes) == 2 and all(len([b for b in ax.patches if b.get_height() > 0]) == 6 for ax in fig.axes)
    gap = plot_gap(df, 'a')
    assert len([ax for ax in gap.axes if ax.patches]) == 2


def test_cli_evaluate_and_a_sweep_of_fixed_averages(toy, tmp_path):
    from ppma.cli import main
    a = VideoViT(img_size=32, num_frames=4, embed_dim=128, depth=4, num_heads=4)
    b = VideoViT(img_size=32, num_frames=4, embed_dim=128, depth=4, num_heads=4)
    for n, m in (('a', a), ('b', b)): save_checkpoint(tmp_path / f'{n}.pt', m)
    runs = train('average', data=str(toy), init=[tmp_path / 'a.pt', tmp_path / 'b.pt'], mix='sweep', sweep_points=3, epochs=2,
                 batch_size=6, out_dir=tmp_path / 'sweep', **TINY)
    assert len(runs) == 3
    df = load_results(tmp_path)
    assert sorted(df.recipe) == ['average-0.00-1.00', 'average-0.50-0.50', 'average-1.00-0.00']
    lp = runs[1]['checkpoint']
    sets = ['--clips', '1', '--crops', '1', '--workers', '0', '--preset', 'tiny-cpu', '--out-dir', str(tmp_path / 'ev'),
            '--results', str(tmp_path / 'r.csv')]
    assert main(['evaluate', str(lp), str(toy), str(Path(toy).parent), *sets]) == 0
    row = load_results(tmp_path / 'r.csv').iloc[0]
    assert (row.protocol, row.dataset, row.videos) == ('evaluate', 'toy', 6) and 0 <= row.top1 <= 1
