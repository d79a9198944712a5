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
