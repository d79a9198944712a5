"""The timm floor in settings.ini is the first version the code runs on: its tests pass there and fail one release before.

    python benchmarks/timm_floor.py            # needs PyPI; installs the two timm versions under /tmp, not in the venv

`block_tail` reads `Attention.norm`, which timm has from 1.0.16 on. The floor's run executes the model notebook and
the timm / checkpoint tests with that timm first on the path; the release before must fail them.
"""
import configparser, re, subprocess, sys, tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def floor():
    ini = configparser.ConfigParser(); ini.read(ROOT / 'settings.ini')
    return re.search(r'\btimm>=([\d.]+)', ini['DEFAULT']['requirements']).group(1)


def before(version):
    major, minor, patch = map(int, version.split('.'))
    return f'{major}.{minor}.{patch - 1}'


def passes(version, where):
    "Whether the model notebook and the timm-facing tests pass with timm `version` first on the path."
    target = Path(where) / version
    subprocess.run([sys.executable, '-m', 'pip', 'install', '-q', '--no-deps', '--target', str(target), f'timm=={version}'], check=True)
    env = {'PYTHONPATH': str(target), 'PATH': f'{BIN}:/usr/bin:/bin', 'HOME': str(Path.home())}
    runs = [[str(BIN / 'nbdev_test'), '--path', 'nbs/03_models.ipynb'],
            [sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider', 'tests/test_ecosystem.py', 'tests/test_checkpoints.py']]
    return all(subprocess.run(r, cwd=ROOT, env=env, capture_output=True).returncode == 0 for r in runs)


if __name__ == '__main__':
    v = floor()
    with tempfile.TemporaryDirectory() as d:
        ok, older = passes(v, d), passes(before(v), d)
    print(f'timm {v} (the floor): {"pass" if ok else "FAIL"}; timm {before(v)}: {"pass" if older else "fail"}')
    sys.exit(0 if ok and not older else 1)
