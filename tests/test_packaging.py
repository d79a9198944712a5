"The install files agree with each other, and nbdev keeps what papermill needs."
import re
from configparser import ConfigParser
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def settings():
    cfg = ConfigParser(delimiters=['='])
    cfg.read(ROOT / 'settings.ini')
    return cfg['DEFAULT']


def names(reqs):
    return {re.split(r'[<>=!~\[ ]', r, maxsplit=1)[0].lower() for r in reqs}


def test_environment_yml_matches_settings_ini():
    cfg = settings()
    pip = next(d['pip'] for d in yaml.safe_load((ROOT / 'environment.yml').read_text())['dependencies']
               if isinstance(d, dict))
    env = [p for p in pip if not p.startswith('-e')]
    ini = cfg['requirements'].split() + cfg['dev_requirements'].split()
    assert sorted(env) == sorted(ini), 'environment.yml pip list and settings.ini requirements drifted'
    assert '-e .[dev]' in pip


def test_pins_that_keep_nbdev_and_opencv_working():
    cfg = settings()
    reqs = cfg['requirements'].split() + cfg['dev_requirements'].split()
    assert 'nbdev==2.4.14' in reqs and 'fastcore<2' in reqs and 'execnb<0.2' in reqs
    assert any(r.startswith('opencv-contrib-python-headless') and '<5' in r for r in reqs)
    assert 'jupyterlab' in names(cfg['lab_requirements'].split())
    assert 'jupyterlab' not in names(reqs)


def test_nbdev_keeps_parameters_tags_and_skips_slow_cells():
    cfg = settings()
    assert 'tags' in cfg['allowed_cell_metadata_keys']
    assert 'slow' in cfg['tst_flags'].split()


def test_cards_are_shipped_with_the_package():
    import ppma.core
    assert (ppma.core.CARDS_DIR / 'ucf101.md').exists()
    assert (ppma.core.CARDS_DIR / 'splits' / 'ucf101' / 'train.csv').exists()


def test_every_requirement_parses_and_decord_only_where_it_has_a_wheel():
    from packaging.requirements import Requirement
    cfg = settings()
    reqs = {Requirement(r).name: Requirement(r) for k in ('requirements', 'dev_requirements') for r in cfg[k].split()}
    decord = reqs['decord'].marker
    assert decord.evaluate({'platform_machine': 'x86_64'}) and decord.evaluate({'platform_machine': 'AMD64'})
    assert not decord.evaluate({'platform_machine': 'arm64'}) and not decord.evaluate({'platform_machine': 'aarch64'})
    assert str(reqs['timm'].specifier) == '>=1.0.16'       # Attention.norm (block_tail); benchmarks/timm_floor.py shows it


def test_without_decord_pyav_gives_the_same_clips(tmp_path):
    "Where decord is missing (no wheel), the loader reads every file with PyAV and the clips are the same."
    import subprocess, sys
    from ppma.testing import write_test_video
    write_test_video(tmp_path / 'a.mp4', n=40, h=64, w=96)
    code = ('import sys; {block}import torch; from ppma.data import HAS_DECORD, VideoClipDataset, open_video; '
            'ds = VideoClipDataset([("a.mp4", 0)], sys.argv[1], num_frames=8, size=32, train=False); '
            'print(type(open_video(sys.argv[1] + "/a.mp4")).__name__, HAS_DECORD); torch.save(ds[0].video, sys.argv[2])')
    for name, block in (('with', ''), ('without', 'sys.modules["decord"] = None; ')):
        r = subprocess.run([sys.executable, '-c', code.format(block=block), str(tmp_path), str(tmp_path / f'{name}.pt')],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr[-2000:]
        assert r.stdout.split() == (['PyAVVideo', 'False'] if name == 'without' else ['DecordVideo', 'True'])
    import torch
    assert torch.equal(torch.load(tmp_path / 'with.pt'), torch.load(tmp_path / 'without.pt'))
