"""timm and Hugging Face meet the project halfway: registered models, their checkpoints, class names, the version."""
import configparser, json, subprocess, sys
from pathlib import Path

import pytest
import timm
import torch

import ppma
from ppma.checkpoints import export_hf, load_checkpoint
from ppma.cli import main
from ppma.cards import save_card
from ppma.registry import TIMM_NAMES
from ppma.training import train

from conftest import TINY

ROOT = Path(__file__).resolve().parents[1]


def test_the_models_guide_lists_every_registered_name():
    readme = (ROOT / 'nbs' / 'guides' / 'models.md').read_text()
    assert set(timm.list_models('ppma_*')) == set(TIMM_NAMES)
    assert all(f'`{n}`' in readme for n in TIMM_NAMES)


@pytest.mark.parametrize('name', sorted(TIMM_NAMES))
def test_timm_builds_each_size(name):
    m = timm.create_model(name, num_classes=5, img_size=32, num_frames=4, depth=1)
    assert m(torch.zeros(1, 3, 4, 32, 32)).shape == (1, 5) and m.get_classifier().out_features == 5
    cfg = timm.data.resolve_data_config({}, model=m)
    assert cfg['input_size'] == (3, 32, 32) and cfg['mean'] == m.pretrained_cfg['mean']


def test_the_paper_size_is_vit_b():
    m = timm.create_model('ppma_vit_base_patch16_224', num_classes=5)
    assert m.pretrained_cfg['input_size'] == (3, 224, 224) and m.pretrained_cfg['num_frames'] == 16 and m.num_features == 768


@pytest.fixture(scope='module')
def runs(toy, tmp_path_factory):
    d = tmp_path_factory.mktemp('eco')
    mae = train('mae', data=str(toy), epochs=1, batch_size=6, out_dir=d / 'mae', **TINY)
    align = train('align', data=str(toy), init=mae['checkpoint'], epochs=1, batch_size=6, out_dir=d / 'align', **TINY)
    return mae['checkpoint'], align['checkpoint']


def test_timm_loads_our_checkpoints(runs):
    mae, align = runs
    kw = dict(img_size=32, num_frames=4)
    m = timm.create_model('ppma_vit_tiny_cpu', num_classes=3, checkpoint_path=str(align), **kw)     # timm's own loader
    want = load_checkpoint(align)['model']
    assert all(torch.equal(v, want[k]) for k, v in m.state_dict().items())
    e = timm.create_model('ppma_vit_tiny_cpu', num_classes=7, pretrained=True, pretrained_cfg_overlay=dict(file=str(mae)), **kw)
    enc = load_checkpoint(mae)['model']
    assert torch.equal(e.state_dict()['blocks.0.attn.qkv.weight'], enc['encoder.blocks.0.attn.qkv.weight'])
    assert e.num_classes == 7                                        # a new head for other classes


def test_an_exported_hf_folder_carries_the_cards_class_names(runs, toy, tmp_path):
    card = save_card(tmp_path / 'named.md', {'name': 'named', 'num_classes': 3, 'class_names': ['left', 'right', 'up'],
                                             'splits': {'val': str(Path(toy).parent / 'val.csv')}})
    assert main(['convert', str(runs[1]), str(tmp_path / 'hf'), '--to', 'hf', '--classes', str(card)]) == 0
    cfg = json.loads((tmp_path / 'hf' / 'config.json').read_text())
    assert cfg['id2label'] == {'0': 'left', '1': 'right', '2': 'up'} and cfg['label2id']['up'] == 2
    from ppma.models import VideoViT
    with pytest.raises(ValueError, match='2 names for a head of 3 classes'):
        export_hf(VideoViT(img_size=32, num_frames=4, embed_dim=16, depth=1, num_heads=2, num_classes=3), tmp_path / 'x', classes=['a', 'b'])


def test_ppma_version():
    ini = configparser.ConfigParser(); ini.read(ROOT / 'settings.ini')
    out = subprocess.run([sys.executable, str(Path(sys.executable).parent / 'ppma'), '--version'], capture_output=True, text=True)
    assert out.stdout.strip() == f'ppma {ini["DEFAULT"]["version"]}' == f'ppma {ppma.__version__}'
