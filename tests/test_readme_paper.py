"Every command of the README's paper section, pasted as a user would, run at tiny size on a fake data root."
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from ppma.paper import PAPER_DOWNSTREAM
from ppma.testing import fake_data_root

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CARDS = ['kinetics150', 'nohuman_kinetics150', 'synthetic150', *PAPER_DOWNSTREAM]
TINY = {'model': 'vit_tiny_cpu', 'size': 32, 'num_frames': 4, 'batch_size': 8, 'epochs': 1, 'save_every': 1,
        'amp': 'none', 'test_clips': 1, 'test_crops': 1}


def paper_commands():
    "The shell lines of the README's paper section, continuation lines joined."
    text = (ROOT / 'README.md').read_text()
    start = text.index("## The paper's benchmark")
    section = text[start:text.index('\n## ', start + 1)]
    blocks = re.findall(r'```sh\n(.*?)```', section, re.S)
    lines = '\n'.join(blocks).replace('\\\n', ' ').splitlines()
    return [l.split('  #')[0].strip() for l in lines if l.strip()]


def tiny_form(cmd, data, out):
    """The command at tiny size: the fake data root, an output folder of the test's, two ranks, the tiny sizes; the
    full benchmark on one dataset from random weights; a subset whose real run needs 11 runs, as its dry run."""
    argv = shlex.split(cmd.replace('/data', str(data)))
    assert argv[0] in ('ppma', 'papermill'), cmd
    if argv[0] == 'papermill':
        argv[2] = str(out / 'out.ipynb')
        argv += ['-p', 'gpus', '2', '-p', 'workers', '1', '-p', 'out_dir', str(out / 'runs')]
        return [str(BIN / 'papermill'), *argv[1:]]
    argv += ['--out-dir', str(out / 'runs'), '--gpus', '2', '--workers', '0']
    argv += [a for k, v in TINY.items() for a in ('--set', f'{k}={v}')]
    if '--datasets' not in argv: argv += ['--datasets', 'ikea_fa', '--recipes', 'random_init', '--seeds', '1']
    elif '--dry-run' not in argv: argv += ['--dry-run']
    return [str(BIN / 'ppma'), *argv[1:]]


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    return fake_data_root(tmp_path_factory.mktemp('data'), CARDS, rows=8)


def test_the_paper_section_has_its_commands():
    cmds = paper_commands()
    assert len(cmds) == 4 and sum(c.startswith('ppma benchmark') for c in cmds) == 3


@pytest.mark.parametrize('k', range(4))
def test_each_paper_command_runs(k, data, tmp_path):
    cmd = paper_commands()[k]
    r = subprocess.run(tiny_form(cmd, data, tmp_path), capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 0, f'{cmd}\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}'
    shown = (tmp_path / 'out.ipynb').read_text() if 'papermill' in cmd else r.stdout
    assert 'GPU hours of compute' in shown and 'TB of checkpoints' in shown
    if 'dry' not in ' '.join(tiny_form(cmd, data, tmp_path)):                 # the run itself: its report
        assert (tmp_path / 'runs' / 'report' / 'results_table.md').read_text().count('| random_init |') == 2


def test_the_readme_states_the_cost_the_script_computes():
    "The README's GPU hours and disk are what `benchmarks/paper_cost.py --gpus 8` prints today, not a stale figure."
    out = subprocess.run([sys.executable, str(ROOT / 'benchmarks' / 'paper_cost.py'), '--gpus', '8'], capture_output=True,
                         text=True, timeout=300, check=True).stdout
    hours, fp32, tb = re.search(r'([\d,]+) GPU hours of compute, ([\d,]+) of them in fp32.*?([\d.]+) TB', out).groups()
    readme = ' '.join((ROOT / 'README.md').read_text().split())
    assert f'{hours} GPU hours of compute' in readme and f'{fp32} of them in the fp32' in readme and f'{tb} TB' in readme
