"The paper's benchmark walked as a GPU user walks it, on CPU: torchrun with two ranks, a kill, a rerun, the report."
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from ppma.checkpoints import save_checkpoint
from ppma.cli import main
from ppma.models import create_model
from ppma.paper import check_plan, paper_jobs, plan
from ppma.runs import lock_run
from ppma.testing import fake_data_root, write_garbage

BIN = Path(sys.executable).parent
# paper-vitb with tiny sizes: the tiny architecture, 32 px, 4 frames, 2 epochs; MAE's batch of 8 clips is 2 videos
# x 4 views (1 per rank); amp=none as a CPU needs (the paper's MAE runs fp16)
TINY_SETS = ['--set', 'model=vit_tiny_cpu', '--set', 'size=32', '--set', 'num_frames=4', '--set', 'batch_size=8',
             '--set', 'epochs=2', '--set', 'save_every=1', '--set', 'amp=none', '--set', 'test_clips=1',
             '--set', 'test_crops=1']


def processes_naming(text):
    "PIDs of the processes whose command line holds `text`."
    pids = []
    for p in Path('/proc').iterdir():
        if not p.name.isdigit(): continue
        try: cmd = (p / 'cmdline').read_bytes().replace(b'\0', b' ').decode()
        except OSError: continue
        if text in cmd and int(p.name) != os.getpid(): pids.append(int(p.name))
    return pids


def alive(pid):
    "Whether a process runs (a zombie, dead but not yet reaped, does not)."
    try: return Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()[0] != 'Z'
    except OSError: return False


def wait_for(condition, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition(): return True
        time.sleep(0.2)
    return False


def test_a_killed_benchmark_reruns_to_its_finished_table_and_report(tmp_path):
    data, out = fake_data_root(tmp_path / 'data', ['nohuman_kinetics150', 'ikea_fa', 'hmdb51'], rows=8), tmp_path / 'out'
    cmd = [str(BIN / 'ppma'), 'benchmark', '--data-root', str(data), '--out-dir', str(out), '--datasets', 'ikea_fa,hmdb51',
           '--recipes', 'mae_nohuman', '--seeds', '1', '--gpus', '2', '--workers', '0', *TINY_SETS]
    with open(tmp_path / 'first.log', 'w') as log:
        first = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        started = wait_for(lambda: (out / 'ikea_fa' / 'mae_nohuman' / 'linear_probe_s0' / 'run.json').exists(), 150)
        os.killpg(first.pid, signal.SIGKILL)           # the job killed without grace: runner and torchrun at once
        first.wait()
    assert started, (tmp_path / 'first.log').read_text()[-3000:]
    # the ranks run in sessions of their own, out of the killed group: they must follow their launcher
    assert wait_for(lambda: not processes_naming(str(out)), 30), processes_naming(str(out))
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    assert again.returncode == 0, again.stderr[-3000:]
    results = pd.concat([pd.read_csv(f) for f in out.rglob('results.csv')])
    runs = sorted(zip(results.dataset, results.protocol))
    assert runs == [('hmdb51', 'finetune'), ('hmdb51', 'linear_probe'), ('ikea_fa', 'finetune'), ('ikea_fa', 'linear_probe')]
    table = (out / 'report' / 'results_table.md').read_text()
    rows = [l for l in table.splitlines() if l.startswith('| mae_nohuman')]
    assert sorted(tuple(r.split(' | ')[1:3]) for r in rows) == runs and 'Missing' not in table
    assert (out / 'report' / '1_top1_by_recipe.png').exists()


def test_the_benchmarks_dry_run_prints_each_command_once_and_prices_it(tmp_path, capsys):
    data = fake_data_root(tmp_path / 'data', ['nohuman_kinetics150', 'ikea_fa'], rows=8)
    assert main(['benchmark', '--data-root', str(data), '--out-dir', str(tmp_path / 'o b'), '--datasets', 'ikea_fa',
                 '--recipes', 'mae_nohuman', '--seeds', '1', '--workers', '1', '--dry-run', '--set', 'amp=none']) == 0
    lines = capsys.readouterr().out.splitlines()
    cmds = [l for l in lines if 'torchrun' in l]
    assert len(cmds) == 3 and all('--resume' in c and "'" in c and '--set amp=none' in c for c in cmds)   # quoted paths
    assert any('GPU hours' in l and 'TB of checkpoints' in l for l in lines)
    assert not (tmp_path / 'o b').exists()                # a dry run writes nothing


def test_the_dry_run_flags_what_the_runs_would_hit(tmp_path):
    data = fake_data_root(tmp_path / 'data', ['nohuman_kinetics150', 'ikea_fa'], rows=8)
    jobs = paper_jobs(tmp_path / 'o', datasets=('ikea_fa',), recipes=('mae_nohuman',), seeds=(0,))
    bad = data / 'ikea_fa' / 'train' / '00003.MP4'
    bad.unlink()
    write_garbage(bad, 2000)                                  # a file that exists and does not decode
    lines = (data / 'ikea_fa' / 'train.csv').read_text().splitlines()
    (data / 'ikea_fa' / 'train.csv').write_text('\n'.join(l for l in lines if not l.endswith(';11')) + '\n')
    vitb = tmp_path / 'vitb.pt'
    save_checkpoint(vitb, create_model('vit_tiny', img_size=32, num_frames=4))   # 192 wide: not the preset's ViT-B
    junk = write_garbage(tmp_path / 'junk.pt', 300)
    with pytest.raises(ValueError) as e:
        check_plan(data, jobs, init=[vitb, junk, tmp_path / 'gone.pt'], workers=1)
    msg = str(e.value)
    assert f'- {junk}: ' in msg and f'checkpoint {tmp_path / "gone.pt"} not found' in msg   # unreadable, missing
    assert 'cannot decode train/00003.MP4' in msg
    assert 'validation label(s) [11] never occur in the train list' in msg
    assert f'init {vitb}: 192 wide, 12 blocks, but preset paper-vitb builds vit_base (768 wide, 12 blocks)' in msg


def test_disk_and_gpu_hours_follow_the_model_not_the_gpu_count(tmp_path):
    data = fake_data_root(tmp_path / 'data', ['nohuman_kinetics150', 'ikea_fa'])
    jobs = paper_jobs(tmp_path / 'o', datasets=('ikea_fa',), recipes=('mae_nohuman',), seeds=(0,))
    one, eight = plan(jobs, data, gpus=1), plan(jobs, data, gpus=8)
    mae, ft = eight.set_index('stage').loc['mae'], eight.set_index('stage').loc['finetune']
    assert 6.5 < mae.disk_gb < 7.0                           # 1.1 GB per ViT-B MAE checkpoint, 6 of them (200 ep / 50 + 2)
    probe = eight.stage == 'linear_probe'
    assert one.gpu_hours[probe].sum() < eight.gpu_hours[probe].sum() / 10   # one process caches the probe's features
    assert (eight.gpu_hours[~probe] == one.gpu_hours[~probe]).all()    # GPU hours do not grow with the GPU count
    assert ft.steps == 30 * (1781 // 32)                    # IKEA's 1781 training videos, batch 32, 30 epochs
    assert 4.0 < ft.disk_gb < 4.3                            # -last, final, epochs 25 and 30: 4 x 1.04 GB
    bf16 = plan(jobs, data, settings={'amp': 'bf16'}).set_index('stage').loc['finetune']
    assert ft.amp == 'none' and ft.gpu_hours == pytest.approx(16 * bf16.gpu_hours)   # fp32 priced as fp32


def test_train_refuses_vitb_inits_under_the_tiny_preset(tmp_path, toy):
    "The README's averaging commands once ran the tiny-cpu recipe on ViT-B encoders without a word."
    inits = []
    for k in range(2):
        inits.append(tmp_path / f'vitb{k}.pt')
        save_checkpoint(inits[-1], create_model('vit_base', img_size=32, num_frames=4, num_classes=0))
    err = subprocess.run([str(BIN / 'ppma'), 'train', '--stage', 'average', '--data', str(toy), '--init', ','.join(map(str, inits)),
                          '--out-dir', str(tmp_path / 'avg')], capture_output=True, text=True, timeout=120).stderr
    assert 'but preset tiny-cpu builds vit_tiny_cpu' in err and '--preset paper-vitb' in err
    assert not (tmp_path / 'avg').exists()


def test_a_run_with_amp_none_trains_in_fp32(toy, tmp_path):
    "`--set amp=none` was dropped: the run then failed on CPU with amp='fp16' needs a GPU."
    from conftest import TINY
    sets = [a for k, v in TINY.items() if k != 'workers' for a in ('--set', f'{k}={v}')]
    assert main(['train', '--stage', 'mae', '--preset', 'paper-vitb', '--data', str(toy), '--out-dir', str(tmp_path / 'r'),
                 '--epochs', '1', '--batch-size', '8', '--workers', '0', '--no-val', *sets, '--set', 'amp=none']) == 0
    import json
    cfg = json.loads((tmp_path / 'r' / 'run.json').read_text())['config']
    assert cfg['amp'] == 'none' and cfg['preset'] == 'paper-vitb'
    ck = torch.load(tmp_path / 'r' / 'checkpoint.pt', weights_only=True)
    assert ck['scaler'] is None                           # fp16 would have kept a GradScaler's state


def test_ranks_die_with_their_launcher(toy, tmp_path):
    "kill -9 on torchrun left both ranks running, holding the run's lock."
    from conftest import TINY
    sets = [a for k, v in TINY.items() if k != 'workers' for a in ('--set', f'{k}={v}')]
    out = tmp_path / 'run'
    launcher = subprocess.Popen([str(BIN / 'torchrun'), '--standalone', '--nproc_per_node', '2', str(BIN / 'ppma'), 'train',
                                 '--stage', 'mae', '--data', str(toy), '--out-dir', str(out), '--epochs', '5000',
                                 '--batch-size', '4', '--workers', '0', *sets], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
    assert wait_for(lambda: (out / 'metrics.jsonl').exists() and len(processes_naming(str(out))) == 3, 120)
    ranks = [p for p in processes_naming(str(out)) if p != launcher.pid]
    os.kill(launcher.pid, signal.SIGKILL)
    launcher.wait()
    try: assert wait_for(lambda: not any(alive(p) for p in ranks), 30), f'ranks {ranks} outlived their launcher'
    finally:
        for p in filter(alive, ranks): os.kill(p, signal.SIGKILL)
    lock_run(out, wait=0).close()                      # nothing holds the run's lock any more


def test_a_refusal_under_torchrun_is_said_once(toy, tmp_path):
    "Rank 0's one-line refusal was buried under rank 1's gloo traceback; summaries printed once per rank."
    from conftest import TINY
    sets = [a for k, v in TINY.items() if k != 'workers' for a in ('--set', f'{k}={v}')]
    cmd = [str(BIN / 'torchrun'), '--standalone', '--nproc_per_node', '2', str(BIN / 'ppma'), 'train', '--stage', 'mae',
           '--data', str(toy), '--out-dir', str(tmp_path / 'run'), '--epochs', '1', '--batch-size', '4', '--workers', '0', *sets]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert first.returncode == 0 and first.stdout.count('mae: wrote') == 1, first.stderr[-2000:]
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert again.returncode != 0 and again.stderr.count('ppma: error:') == 1 and 'holds a finished run' in again.stderr
    assert 'gloo' not in again.stderr.lower() and 'Connection closed' not in again.stderr
