"""Run settings are one typed record (`ppma.settings.Settings`): every field has a type, a default and a meaning, the
layers above it (presets, stages, a user's `--set`) may only name its fields, and the docs page lists them all."""
import dataclasses, importlib.util, subprocess, sys, typing
from pathlib import Path

import nbformat
import pytest

from ppma.settings import FIELDS, PRESETS, Settings, settings_table
from ppma.stages import STAGES

ROOT = Path(__file__).resolve().parents[1]


def test_every_setting_has_a_type_a_default_and_a_meaning():
    hints = typing.get_type_hints(Settings)
    rows = settings_table()
    assert [r[0] for r in rows] == [f.name for f in dataclasses.fields(Settings)] == list(hints)
    for name, kind, default, meaning in rows:
        assert kind and meaning and len(meaning) > 10, name
        assert default == repr(FIELDS[name].default)
        assert hints[name] is not None
    print('\n'.join(f'{n:20s} {t:22s} {d:14s} {m}' for n, t, d, m in rows))


def test_presets_and_stages_only_name_fields_of_the_record():
    names = set(FIELDS)
    for p in PRESETS.values(): assert set(p) <= names
    for stage in STAGES.values():
        for preset, overrides in stage.settings.items():
            assert preset in PRESETS and set(overrides) <= names, (stage.__name__, set(overrides) - names)


def test_a_user_setting_outside_the_record_is_refused_before_any_work(tmp_path):
    r = subprocess.run([str(Path(sys.executable).parent / 'ppma'), 'train', '--stage', 'mae', '--set', 'acum=2',
                        '--out-dir', str(tmp_path / 'run')], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode != 0 and "did you mean 'accum'" in r.stderr, r.stderr[-500:]
    assert not (tmp_path / 'run').exists()


def test_the_docs_page_lists_every_setting(tmp_path):
    spec = importlib.util.spec_from_file_location('build', ROOT / 'nbs' / '_mkdocs' / 'build.py')
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    page = nbformat.read(build.execute(ROOT / 'nbs' / '04_settings.ipynb', tmp_path / 'settings.ipynb'), as_version=4)
    shown = '\n'.join(o.get('data', {}).get('text/markdown', '') for c in page.cells if c.cell_type == 'code'
                      for o in c.outputs)
    for name, kind, default, meaning in settings_table():
        assert f'| `{name}` | `{kind}` | `{default}` | {meaning} |' in shown, name
