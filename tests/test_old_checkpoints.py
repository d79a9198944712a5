"""Checkpoints written by commit 3d37cfc (made by `tests/fixtures/make_old_checkpoints.py`) still load and still start runs."""
from pathlib import Path

import pytest
import torch

import ppma.models
from ppma.checkpoints import build_model, load_any, load_checkpoint
from ppma.models import MAEVideoViT, VideoViT
from ppma.training import train

from conftest import TINY

OLD = Path(__file__).parent / 'fixtures' / '3d37cfc'
NANO = dict(img_size=32, num_frames=4, embed_dim=16, depth=2, num_heads=2, decoder_embed_dim=16, decoder_depth=1,
            decoder_num_heads=2)


@pytest.fixture
def nano(monkeypatch):
    "The fixtures' 2-block ViT as an architecture, so that runs can start from them."
    monkeypatch.setitem(ppma.models.ARCHITECTURES, 'vit_nano', NANO)
    return {**TINY, 'model': 'vit_nano'}


@pytest.mark.parametrize('name,cls', [('mae.pt', MAEVideoViT), ('align.pt', VideoViT), ('average-learned.pt', VideoViT)])
def test_an_old_checkpoint_rebuilds_with_its_weights(name, cls):
    ck = load_checkpoint(OLD / name)
    model = build_model(ck)
    assert type(model) is cls
    state = model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in ck['model'].items() if k in state)
    assert sum(k in state for k in ck['model']) == len(ck['model'])


def test_load_any_reads_old_mae_and_classifier_files():
    enc, clf = load_any(OLD / 'mae.pt'), load_any(OLD / 'align.pt')
    assert type(enc) is type(clf) is VideoViT and clf.num_classes == 3
    old = load_checkpoint(OLD / 'mae.pt')['model']
    assert torch.equal(enc.state_dict()['blocks.0.attn.qkv.weight'], old['encoder.blocks.0.attn.qkv.weight'])
    assert load_checkpoint(OLD / 'average-learned.pt')['mixing_weights'] is not None


def test_old_checkpoints_start_new_runs(toy, tmp_path, nano):
    kw = dict(data=str(toy), epochs=1, batch_size=6, **nano)
    align = train('align', init=str(OLD / 'mae.pt'), out_dir=tmp_path / 'align', **kw)
    assert Path(align['checkpoint']).exists()
    probe = train('linear_probe', init=str(OLD / 'align.pt'), out_dir=tmp_path / 'probe', **kw)
    trunk = load_checkpoint(OLD / 'align.pt')['model']
    after = load_checkpoint(probe['checkpoint'])['model']
    assert all(torch.equal(trunk[k], after[k]) for k in trunk if k.startswith('blocks.'))     # frozen: loaded exactly
    ev = train('evaluate', init=str(OLD / 'align.pt'), data=str(toy), out_dir=tmp_path / 'ev', **TINY)
    assert {'acc1', 'acc5'} <= set(ev['val'])
