"""Adding a stage is one class and one registry line: a toy stage trains through `train`, `ppma train` and `nbs/train.ipynb`."""
import json, os, subprocess, sys
from pathlib import Path

import pytest

from ppma.checkpoints import load_checkpoint
from ppma.core import read_jsonl

from conftest import TINY

ROOT = Path(__file__).resolve().parents[1]
TOY_STAGE = '''
import torch.nn.functional as F
from ppma.models import create_model
from ppma.stages import STAGES, Stage


class Toy(Stage):
    "A plain ViT classifier trained with cross-entropy: the smallest stage that learns."
    settings = {'tiny-cpu': dict(epochs=2, batch_size=6, ref_batch=6, lr=3e-3, min_lr=0.0, warmup=0.0, weight_decay=0.0,
                                 amp='none', save_every=1)}
    protocol = 'toy'

    def build(self, cfg, sources, init):
        model = create_model(cfg['model'], img_size=cfg['size'], num_frames=cfg['num_frames'], num_classes=sources[0].num_classes)
        return model, [0] * len(sources)

    def loss(self, run, model, batch, head, seed):
        logits = model(batch.video.to(run.device))
        return F.cross_entropy(logits, batch.label.to(run.device)), logits


STAGES['toy'] = Toy
'''


@pytest.fixture
def plugin(tmp_path):
    "The toy stage as a module outside the package, and the environment that names it."
    (tmp_path / 'toy_stage.py').write_text(TOY_STAGE)
    env = {**os.environ, 'PPMA_STAGES': 'toy_stage', 'PYTHONPATH': f'{tmp_path}{os.pathsep}{os.environ.get("PYTHONPATH", "")}'}
    env.pop('TQDM_MININTERVAL', None)
    return env


def check_run(out, epochs=2):
    "The run trained `epochs` epochs, saved a classifier and scored it under the stage's protocol."
    recs = read_jsonl(Path(out) / 'metrics.jsonl')
    assert [r['stage'] for r in recs if r['split'] == 'train_epoch'] == ['toy'] * epochs
    assert 'head.weight' in load_checkpoint(Path(out) / 'checkpoint.pt')['model']
    assert json.loads((Path(out) / 'eval-toy.json').read_text())['videos'] == 6
    assert json.loads((Path(out) / 'run.json').read_text())['status'] == 'finished'


def test_a_toy_stage_trains_through_ppma_train(toy, tmp_path, plugin):
    sets = [x for k, v in TINY.items() if k != 'workers' for x in ('--set', f'{k}={v}')]
    r = subprocess.run([sys.executable, str(Path(sys.executable).parent / 'ppma'), 'train', '--stage', 'toy', '--data', str(toy),
                        '--workers', '0', '--out-dir', str(tmp_path / 'cli'), *sets], cwd=ROOT, env=plugin, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    check_run(tmp_path / 'cli')


def test_a_toy_stage_trains_through_the_train_notebook(toy, tmp_path, plugin):
    settings = json.dumps({k: v for k, v in TINY.items() if k != 'workers'})
    r = subprocess.run([sys.executable, '-m', 'papermill', str(ROOT / 'nbs/train.ipynb'), str(tmp_path / 'toy.ipynb'), '-k', 'python3',
                        '--log-level', 'WARNING', '-p', 'stage', 'toy', '-p', 'data', str(toy), '-p', 'workers', '0',
                        '-p', 'out_dir', str(tmp_path / 'nb'), '-y', f'settings: {settings}'], cwd=ROOT, env=plugin,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    check_run(tmp_path / 'nb')


def test_an_unknown_stage_is_refused_naming_the_known_ones(toy, tmp_path):
    from ppma.training import train
    with pytest.raises(ValueError, match='use one of mae, align'):
        train('toy', data=str(toy), out_dir=tmp_path / 'x', **TINY)


def test_importing_the_stages_loads_no_plugin_and_patches_nothing(tmp_path):
    "Issue 28: plugins load on an explicit call (`ppma` and `train` make it); the miniature's jobs pass progress=False."
    env = {**os.environ, 'PPMA_STAGES': 'no_such_stage_module'}
    code = ("import tqdm; init = vars(tqdm.tqdm)['__init__']; import ppma.stages, ppma.miniature, ppma.training; "
            "assert vars(tqdm.tqdm)['__init__'] is init; print('ok')")
    r = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True, cwd=ROOT)
    assert r.stdout.strip() == 'ok', r.stderr[-800:]
    r = subprocess.run([str(Path(sys.executable).parent / 'ppma'), 'train', '--stage', 'mae'], env=env,
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode != 0 and 'no_such_stage_module' in r.stderr, r.stderr[-800:]
    src = (ROOT / 'ppma' / 'miniature.py').read_text()
    assert 'tqdm.__init__' not in src and "'progress': False" in src
