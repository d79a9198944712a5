"""`make test` runs ruff with the rules pyproject.toml writes down: no line over 120 characters, no `;` joins."""
import json, shutil, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUFF = [sys.executable, '-m', 'ruff', 'check', '--config', str(ROOT / 'pyproject.toml'), '--no-cache']


def ruff(*paths, cwd=ROOT):
    return subprocess.run([*RUFF, *map(str, paths)], cwd=cwd, capture_output=True, text=True)


def test_the_notebooks_and_the_package_pass():
    r = ruff()
    assert r.returncode == 0, r.stdout + r.stderr


def test_a_planted_long_line_and_a_planted_join_fail(tmp_path):
    nb = json.loads((ROOT / 'nbs' / '00_core.ipynb').read_text())
    cell = next(c for c in nb['cells'] if c['cell_type'] == 'code' and '#| export' in ''.join(c['source']))
    planted = tmp_path / 'nbs'
    planted.mkdir()
    for name, line in (('long', f'x = "{"a" * 124}"\n'), ('join', 'x = 1; y = 2\n')):
        cell['source'] = [line]
        (planted / f'{name}.ipynb').write_text(json.dumps(nb))
        out = ruff(planted / f'{name}.ipynb').stdout
        assert ('E501' if name == 'long' else 'E702') in out, out
    shutil.copy(ROOT / 'nbs' / '00_core.ipynb', planted / 'clean.ipynb')
    assert ruff(planted / 'clean.ipynb').returncode == 0
