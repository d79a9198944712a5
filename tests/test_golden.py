"""Golden values: every stage for 2 epochs on generated data, checked against numbers recorded before a refactor.

A change that is meant to keep behaviour (moving code, renaming, splitting modules) must leave these exact.
On the machine kind they were recorded on (same torch CPU capability, processor model and torch) losses, metrics
and weights' hashes must match bit for bit; elsewhere the floats must agree to 1e-4 and each tensor's sums of |x| and x^2 to 1e-3.
Re-record (only in a commit that says why behaviour changed): `python tests/test_golden.py --record`.
"""
import hashlib, json, math, platform, sys, tempfile
from pathlib import Path

import pytest
import torch

from ppma.checkpoints import load_checkpoint
from ppma.training import train

sys.path.insert(0, str(Path(__file__).parent))
from conftest import TINY, make_toy  # noqa: E402

GOLDEN = Path(__file__).with_name('golden.json')
PAPER_ALIGN = dict(preset='paper-vitb', amp='none', grad_checkpointing=False, save_every_steps=0, crop_scale=(0.5, 1.0))


def tensors(path):
    "The learned tensors a checkpoint holds: the model, extra heads and mixing weights, by name."
    ck = load_checkpoint(path)
    out = {f'model.{k}': v for k, v in ck['model'].items()}
    for i, head in enumerate(ck.get('extra_heads') or []):
        out.update({f'head{i}.{k}': v for k, v in head.items()})
    if ck.get('mixing_weights') is not None: out['mixing_weights'] = torch.as_tensor(ck['mixing_weights'])
    return out


def fingerprint(path):
    "sha256 of all tensors' bytes, and (sum of |x|, sum of x^2) per tensor (no cancellation) for machines whose kernels round differently."
    ts, h = tensors(path), hashlib.sha256()
    for k in sorted(ts):
        h.update(k.encode()); h.update(ts[k].detach().contiguous().cpu().numpy().tobytes())
    return h.hexdigest(), {k: [float(v.double().abs().sum()), float(v.double().square().sum())] for k, v in sorted(ts.items())}


def losses(out):
    recs = [json.loads(l) for l in (Path(out) / 'metrics.jsonl').read_text().splitlines()]
    return [r['loss'] for r in recs if r['split'] == 'train_epoch']


def run_all(toy, tmp):
    "Each stage for 2 epochs, chained as the benchmark chains them; returns what each one produced."
    kw = dict(data=str(toy), epochs=2, batch_size=6, **TINY)
    runs = {}

    def go(name, stage, out=None, **extra):
        s = train(stage, out_dir=tmp / name, **{**kw, **extra})
        s = s[-1] if isinstance(s, list) else s
        runs[name] = dict(out=Path(out or s['out_dir']), checkpoint=Path(s['checkpoint']), val=s['val'])
        return s['checkpoint']

    mae = go('mae', 'mae')
    align = go('align', 'align', init=mae)
    go('align_paper', 'align', init=mae, **PAPER_ALIGN)
    ft = go('finetune', 'finetune', init=align)
    go('probe_cached', 'linear_probe', init=align, cache_features=True)
    go('probe', 'linear_probe', init=align, cache_features=False)
    go('average_fixed', 'average', init=f'{align},{ft}', mix='fixed', mix_weights=[0.25, 0.75])
    go('average_learned', 'average', init=f'{align},{ft}', mix='learned')
    go('evaluate', 'evaluate', init=ft, epochs=None)
    return runs


def cpu_model():
    "The processor's model name: two CPUs with the same instruction set (AVX512 on an AMD EPYC and on an Intel Xeon) still round differently."
    try: return next(l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name'))
    except (OSError, StopIteration): return platform.processor() or None


def record(runs):
    out = {}
    for name, r in runs.items():
        digest, parts = fingerprint(r['checkpoint']) if name != 'evaluate' else (None, None)
        out[name] = dict(losses=losses(r['out']) if name != 'evaluate' else [], val=r['val'], sha256=digest, tensors=parts)
    return {'cpu_capability': torch.backends.cpu.get_cpu_capability(), 'cpu': cpu_model(), 'torch': torch.__version__, 'runs': out}


def close(a, b, rel, floor=1e-6):
    "Nested numbers equal within `rel` (relative, with an absolute `floor` for numbers near zero)."
    if isinstance(a, dict): return a.keys() == b.keys() and all(close(a[k], b[k], rel, floor) for k in a)
    if isinstance(a, list): return len(a) == len(b) and all(close(x, y, rel, floor) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float): return math.isclose(a, b, rel_tol=rel, abs_tol=floor)
    return a == b


@pytest.fixture(scope='module')
def now(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('golden')
    return record(run_all(make_toy(tmp / 'toy'), tmp))


NAMES = ('mae', 'align', 'align_paper', 'finetune', 'probe_cached', 'probe', 'average_fixed', 'average_learned', 'evaluate')


@pytest.mark.parametrize('name', NAMES)
def test_each_stage_matches_its_golden_values(now, name):
    gold = json.loads(GOLDEN.read_text())
    g, n = gold['runs'][name], now['runs'][name]
    if all(now[k] == gold.get(k) for k in ('cpu_capability', 'cpu', 'torch')):      # the machine that recorded them
        assert n['losses'] == g['losses'] and n['val'] == g['val'], (n, g)
        assert n['sha256'] == g['sha256'], f'{name}: weights differ from the golden ones'
    else:                                             # other kernels round differently: same numbers to a tolerance
        assert close(n['losses'], g['losses'], 1e-4) and close(n['val'], g['val'], 1e-4), (n, g)
        assert close(n['tensors'], g['tensors'], 1e-3), f'{name}: weights differ from the golden ones'


def test_the_golden_runs_are_not_trivial():
    "The recorded runs moved their weights and produced metrics, so matching them says something."
    runs = json.loads(GOLDEN.read_text())['runs']
    assert all(r['val'] for r in runs.values())
    assert all(len(r['losses']) == 2 and all(map(math.isfinite, r['losses'])) for k, r in runs.items() if k != 'evaluate')
    assert runs['align']['sha256'] != runs['finetune']['sha256'] != runs['probe']['sha256']


if __name__ == '__main__' and sys.argv[1:] == ['--record']:
    with tempfile.TemporaryDirectory() as d:
        GOLDEN.write_text(json.dumps(record(run_all(make_toy(Path(d) / 'toy'), Path(d))), indent=1) + '\n')
    print(f'wrote {GOLDEN}')
