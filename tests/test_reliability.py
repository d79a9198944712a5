"""What a careless or hostile input does, seen as a user sees it: source bytes, exit status, messages.

One test per failure found in the reliability review (commit 3d37cfc); each fails there. `remove-humans` and
`synth` have their own files (test_reliability_removal.py, test_reliability_synth.py)."""
import hashlib, json, os, random, shutil, signal, subprocess, sys, time
from pathlib import Path

import pytest
import torch

from ppma.checkpoints import build_model, save_checkpoint
from ppma.cli import main
from ppma.cards import save_card
from ppma.models import MAEVideoViT, VideoViT, create_model
from ppma.testing import truncate_file, write_test_video

from conftest import TINY

ROOT = Path(__file__).resolve().parents[1]
PPMA = str(Path(sys.executable).parent / 'ppma')
SETS = [x for s in ('model=vit_tiny_cpu', 'size=32', 'num_frames=4', 'clip_seconds=0.6', 'test_clips=1', 'test_crops=1',
                    'mixup=0', 'cutmix=0', 'drop_path=0', 'erase_p=0') for x in ('--set', s)]


def tree(folder):
    "`{relative path: sha256}` of every file under `folder`."
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(Path(folder).rglob('*'))
            if p.is_file() and p.name != '.lock'}


def cli(*args):
    "Run `ppma ARGS` in a subprocess; `(exit status, stderr)`."
    p = subprocess.run([sys.executable, PPMA, *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    return p.returncode, p.stderr


def train_args(toy, stage, out, epochs=1, *extra):
    return ['train', '--stage', stage, '--data', str(toy), '--epochs', str(epochs), '--batch-size', '6', '--workers', '0',
            '--out-dir', str(out), *SETS, *map(str, extra)]


def rows(toy):
    return (Path(toy).parent / 'train.csv').read_text()


@pytest.fixture
def sources(tmp_path):
    "A user's videos beside (not under) a dataset root, and a list that reaches them with an absolute and a `..` row."
    src, root = tmp_path / 'mine', tmp_path / 'data' / 'set'
    write_test_video(src / 'a.avi', n=12, h=64, w=80); write_test_video(src / 'b.avi', n=12, h=64, w=80)
    write_test_video(root / 'ok.avi', n=12, h=64, w=80)
    lst = tmp_path / 'list.csv'
    lst.write_text(f'ok.avi;0\n{src / "a.avi"};0\n../../mine/b.avi;1\n')
    return src, root, lst


# 1. containment
def test_resize_never_writes_outside_its_output_and_leaves_sources_alone(sources, tmp_path, capsys):
    src, root, lst = sources
    before = tree(tmp_path)
    assert main(['data', 'resize', str(lst), str(root), str(tmp_path / 'out'), '--short-side', '32', '--workers', '1']) == 2
    assert f'{lst}, line 2' in capsys.readouterr().err
    assert tree(tmp_path) == before                                  # nothing written, nothing changed
    lst.write_text('ok.avi;0\n../../mine/b.avi;1\n')
    assert main(['data', 'resize', str(lst), str(root), str(tmp_path / 'out'), '--workers', '1']) == 2
    assert f'{lst}, line 2' in capsys.readouterr().err and tree(src) == {k[5:]: v for k, v in before.items() if k.startswith('mine/')}


def test_resize_refuses_an_output_inside_its_input(sources, capsys):
    src, root, lst = sources
    lst.write_text('ok.avi;0\n')
    assert main(['data', 'resize', str(lst), str(root), str(root / 'small'), '--workers', '1']) == 2
    assert f'out {root / "small"}: it is, contains or lies inside' in capsys.readouterr().err and not (root / 'small').exists()


def test_training_refuses_rows_outside_its_root(toy, tmp_path, capsys):
    lst = tmp_path / 'train.csv'
    lst.write_text(rows(toy) + '../../etc/passwd;0\n')
    assert main(train_args(lst, 'mae', tmp_path / 'run') + ['--data-root', str(Path(toy).parent)]) == 2
    assert f'{lst}, line {len(rows(toy).splitlines()) + 1}' in capsys.readouterr().err
    assert not (tmp_path / 'run').exists()


# 2. checked initialisation
def test_a_wrong_init_is_an_error_naming_what_is_missing(toy, tmp_path, capsys):
    torch.save({'pos_embed': torch.zeros(1, 8, 128)}, tmp_path / 'pos.pt')
    assert main(train_args(toy, 'align', tmp_path / 'a', 1, '--init', tmp_path / 'pos.pt')) == 2
    assert 'loaded 0 of' in capsys.readouterr().err and not (tmp_path / 'a' / 'run.json').exists()
    save_checkpoint(tmp_path / 'deep.pt', create_model('vit_tiny_cpu', img_size=32, num_frames=4, depth=8))
    assert main(train_args(toy, 'align', tmp_path / 'b', 1, '--init', tmp_path / 'deep.pt')) == 2
    assert 'blocks.4' in capsys.readouterr().err


def test_run_json_records_what_the_init_loaded(toy, tmp_path):
    save_checkpoint(tmp_path / 'mae.pt', create_model('vit_tiny_cpu', mae=True, img_size=32, num_frames=4))
    assert main(train_args(toy, 'align', tmp_path / 'a', 1, '--init', tmp_path / 'mae.pt')) == 0
    loaded = json.loads((tmp_path / 'a' / 'run.json').read_text())['init_loaded']
    assert loaded['loaded'] == loaded['expected'] > 0 and loaded['missing'] == []


# 4. honest results
def test_no_results_row_from_a_training_list(toy, tmp_path):
    assert main(train_args(Path(toy).parent / 'train.csv', 'linear_probe', tmp_path / 'lp', 2,
                           '--data-root', Path(toy).parent)) == 0
    assert (tmp_path / 'lp' / 'checkpoint.pt').exists() and not (tmp_path / 'results.csv').exists()


def test_a_validation_label_the_training_rows_never_use_is_refused(toy, tmp_path):
    from ppma.training import train
    val = tmp_path / 'val.csv'
    val.write_text('val/up/up_000.mp4;9\n')
    with pytest.raises(ValueError, match='label 9 never appears'):
        train('finetune', data=str(Path(toy).parent / 'train.csv'), data_root=Path(toy).parent, val=str(val), epochs=1,
              batch_size=6, out_dir=tmp_path / 'ft', **TINY)
    assert not (tmp_path / 'ft').exists()


def test_a_label_typo_in_a_plain_list_does_not_widen_the_head(toy, tmp_path, capsys):
    lst = tmp_path / 'train.csv'
    lst.write_text(rows(toy) + 'train/up/up_000.mp4;9\n')
    assert main(train_args(lst, 'finetune', tmp_path / 'ft', 1, '--data-root', Path(toy).parent)) == 2
    assert f'{lst}' in capsys.readouterr().err and not (tmp_path / 'ft').exists()


# 5. run folders
def test_a_finished_run_is_not_overwritten_and_resume_does_nothing(toy, tmp_path, capsys):
    out = tmp_path / 'run'
    assert main(train_args(toy, 'linear_probe', out, 2, '--set', 'cache_features=False')) == 0
    kept, results = tree(out), (tmp_path / 'results.csv').read_text()
    assert main(train_args(toy, 'linear_probe', out, 2, '--set', 'cache_features=False')) == 2
    assert '--overwrite' in capsys.readouterr().err
    code, err = cli(*train_args(toy, 'linear_probe', out, 2, '--set', 'cache_features=False', '--resume'))
    assert code == 0 and 'finished' in err
    assert tree(out) == kept and (tmp_path / 'results.csv').read_text() == results   # same bytes, no second row
    assert main(train_args(toy, 'linear_probe', out, 2, '--set', 'cache_features=False', '--overwrite')) == 0


def test_resume_with_nothing_to_resume_says_so(toy, tmp_path):
    code, err = cli(*train_args(toy, 'mae', tmp_path / 'new', 1, '--resume'))
    assert code == 0 and 'nothing to resume' in err


def test_a_second_run_into_a_busy_folder_is_refused_at_once(toy, tmp_path):
    out = tmp_path / 'busy'
    first = subprocess.Popen([sys.executable, PPMA, *map(str, train_args(toy, 'mae', out, 50))], cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 120
        while not (out / 'metrics.jsonl').exists() and time.time() < deadline: time.sleep(0.1)
        t0 = time.time()
        code, err = cli(*train_args(toy, 'mae', out, 1))
        assert code == 2 and 'in use by another run' in err, err[-500:]
        assert first.poll() is None                                      # the first run goes on
    finally:
        os.killpg(first.pid, signal.SIGKILL); first.wait()


def _steps(out):
    recs = [json.loads(l) for l in (out / 'metrics.jsonl').read_text().splitlines()]
    return [(r['epoch'], r['step'], r['split']) for r in recs]


def test_metrics_carry_on_after_a_killed_run_resumes(toy, tmp_path):
    out = tmp_path / 'run'
    args = [*train_args(toy, 'mae', out, 3, '--set', 'save_every_steps=1'), '--batch-size', '2']
    p = subprocess.Popen([sys.executable, PPMA, *map(str, args)], cwd=ROOT, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 240
    while time.time() < deadline and p.poll() is None:
        if (out / 'metrics.jsonl').exists() and any(e == 1 and s == 'train' for e, _, s in _steps(out)): break
        time.sleep(0.02)
    os.killpg(p.pid, signal.SIGKILL); p.wait()
    assert cli(*args, '--resume')[0] == 0
    steps = _steps(out)
    assert len(steps) == len(set(steps)), 'a step is logged twice'
    assert [e for e, _, s in steps if s == 'train_epoch'] == [0, 1, 2]


# SIGTERM and a full disk
def test_sigterm_saves_a_resumable_checkpoint_and_resume_matches_an_uninterrupted_run(toy, tmp_path):
    args = lambda out, *x: [PPMA, *train_args(toy, 'mae', out, 2, *x)]
    ref = subprocess.Popen([sys.executable, *args(tmp_path / 'ref')], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out = tmp_path / 'run'
    p = subprocess.Popen([sys.executable, *args(out)], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while time.time() < deadline and p.poll() is None:
        if (out / 'metrics.jsonl').exists() and any(e == 1 and s == 'train' for e, _, s in _steps(out)): break
        time.sleep(0.02)
    p.send_signal(signal.SIGTERM)                                        # as a cluster preempting the job
    assert p.wait(timeout=120) == 143, p.stderr.read()[-2000:]
    assert '--resume' in p.stderr.read()
    ck = torch.load(out / 'checkpoint-last.pt', weights_only=True)
    assert ck['progress'] and not (out / 'checkpoint.pt').exists()
    assert cli(*args(out, '--resume')[1:])[0] == 0 and ref.wait() == 0
    a, b = (torch.load(tmp_path / d / 'checkpoint.pt', weights_only=True)['model'] for d in ('ref', 'run'))
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture
def small_disk(tmp_path):
    "A 300 kB tmpfs (root in a container that allows mounts, as CI here)."
    d = tmp_path / 'disk'; d.mkdir()
    if subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=300k', 'tmpfs', str(d)], capture_output=True).returncode:
        pytest.skip('cannot mount a small tmpfs here')
    yield d
    subprocess.run(['umount', '-l', str(d)])


def test_a_full_disk_names_the_file_and_keeps_the_previous_checkpoint(small_disk):
    path = small_disk / 'checkpoint-last.pt'
    save_checkpoint(path, VideoViT(img_size=32, num_frames=4, embed_dim=32, depth=1, num_heads=2))
    before = path.read_bytes()
    with pytest.raises(OSError, match='checkpoint-last.pt: not written, the disk is full'):
        save_checkpoint(path, VideoViT(img_size=32, num_frames=4, embed_dim=64, depth=4, num_heads=2))
    assert path.read_bytes() == before and os.listdir(small_disk) == ['checkpoint-last.pt']


# 6. settings
@pytest.mark.parametrize('extra,named', [(['--set', 'acum=2'], "'accum'"), (['--set', 'amp=fp17'], 'amp='),
                                         (['--epochs', '0'], 'epochs='), (['--batch-size', '-2'], 'batch_size=')])
def test_bad_settings_are_refused_before_anything_is_written(toy, tmp_path, capsys, extra, named):
    out = tmp_path / 'run'
    out.mkdir(); (out / 'run.json').write_text('{"status": "finished"}')         # an existing run's record
    assert main(train_args(toy, 'mae', out, 1) + extra) == 2
    assert named in capsys.readouterr().err and tree(out) == {'run.json': hashlib.sha256(b'{"status": "finished"}').hexdigest()}


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the refusal on a machine without a GPU')
def test_a_device_that_is_not_there_is_refused(toy, tmp_path, capsys):
    assert main(train_args(toy, 'mae', tmp_path / 'run', 1, '--device', 'cuda')) == 2
    assert 'device' in capsys.readouterr().err


def test_the_run_notebook_refuses_an_unknown_parameter(tmp_path):
    p = subprocess.run([str(Path(sys.executable).parent / 'papermill'), 'nbs/train.ipynb', str(tmp_path / 'o.ipynb'), '-k', 'python3',
                        '-p', 'stage', 'mae', '-p', 'epoch', '1', '-p', 'out_dir', str(tmp_path / 'run')],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert p.returncode != 0 and "unknown parameter 'epoch'; did you mean 'epochs'" in p.stdout + p.stderr
    assert not (tmp_path / 'run').exists()


# 7. evaluate what you were given
@pytest.fixture
def tiny_mae(tmp_path):
    "A tiny MAE of this project: 4 heads (a guess from its width would say 2), 48 px, 8 frames."
    torch.manual_seed(0)
    mae = create_model('vit_tiny_cpu', mae=True, img_size=48, num_frames=8)
    save_checkpoint(tmp_path / 'mae.pt', mae)
    return mae.encoder.eval(), tmp_path / 'mae.pt'


def test_convert_rebuilds_a_tiny_mae_exactly(tiny_mae, tmp_path):
    enc, path = tiny_mae
    assert main(['convert', str(path), str(tmp_path / 'enc.pt'), '--to', 'ppma']) == 0
    x = torch.randn(2, 3, 8, 48, 48)
    with torch.no_grad(): assert torch.equal(build_model(tmp_path / 'enc.pt').eval().forward_features(x), enc.forward_features(x))


def test_features_of_a_tiny_mae_are_its_own(tiny_mae, tmp_path):
    from ppma.data import VideoClipDataset, collate, read_split
    from ppma.models import extract_features
    enc, path = tiny_mae
    for i in range(2): write_test_video(tmp_path / 'v' / f'{i}.mp4', n=16, h=48, w=64)
    (tmp_path / 'l.csv').write_text('0.mp4;0\n1.mp4;1\n')
    assert main(['features', str(path), str(tmp_path / 'l.csv'), str(tmp_path / 'v'), str(tmp_path / 'f.pt'),
                 '--clips', '1', '--crops', '1', '--workers', '0']) == 0
    ds = VideoClipDataset(read_split(tmp_path / 'l.csv'), tmp_path / 'v', num_frames=8, size=48, train=False, clips=1, crops=1)
    ref, _, _ = extract_features(enc, torch.utils.data.DataLoader(ds, batch_size=4, collate_fn=collate), progress=False)
    assert torch.allclose(torch.load(tmp_path / 'f.pt')['features'], ref, atol=1e-6)


def test_averaging_two_tiny_maes_keeps_their_architecture(tiny_mae, toy, tmp_path):
    from ppma.training import train
    enc, path = tiny_mae
    shutil.copy(path, tmp_path / 'same.pt')
    tiny48 = {**TINY, 'size': 48, 'num_frames': 8}
    train('average', data=str(toy), init=[path, tmp_path / 'same.pt'], mix='fixed', epochs=1, batch_size=6,
          out_dir=tmp_path / 'avg', **{**tiny48, 'lr': 1e-2})
    x = torch.randn(2, 3, 8, 48, 48)
    with torch.no_grad():
        assert torch.allclose(build_model(tmp_path / 'avg' / 'averaged.pt').eval().forward_features(x), enc.forward_features(x), atol=1e-6)


def test_evaluate_scores_a_checkpoint_at_its_own_size_and_records_it(toy, tmp_path):
    out = tmp_path / 'runs' / 'ft'
    assert main(train_args(toy, 'finetune', out, 1, '--recipe', 'my_finetune')) == 0
    assert main(['evaluate', str(out / 'checkpoint.pt'), str(toy), str(Path(toy).parent), '--out-dir', str(tmp_path / 'ev'),
                 '--clips', '1', '--crops', '1', '--workers', '0']) == 0
    import pandas as pd
    row = pd.read_csv(tmp_path / 'results.csv').iloc[-1]
    assert (row.recipe, row.img_size, row.num_frames, row.preset) == ('my_finetune', 32, 4, 'paper-vitb')


def test_a_hugging_face_folder_is_evaluated_like_a_file(toy, tmp_path):
    pytest.importorskip('transformers')
    out = tmp_path / 'ft'
    assert main(train_args(toy, 'finetune', out, 1)) == 0
    assert main(['convert', str(out / 'checkpoint.pt'), str(tmp_path / 'hf'), '--to', 'hf']) == 0
    assert main(['evaluate', str(tmp_path / 'hf'), str(toy), str(Path(toy).parent), '--out-dir', str(tmp_path / 'ev'),
                 '--clips', '1', '--crops', '1', '--workers', '0']) == 0


# 10. messages that name the file, the line or the parameter
def test_messages_name_the_file_and_line(toy, tmp_path, capsys):
    empty, latin = tmp_path / 'empty.csv', tmp_path / 'latin.csv'
    empty.write_text('\n')
    assert main(train_args(empty, 'mae', tmp_path / 'r', 1, '--data-root', tmp_path)) == 2
    assert f'{empty}: empty split list' in capsys.readouterr().err
    latin.write_bytes(b'ok.mp4;0\ncaf\xe9.mp4;1\n')
    assert main(train_args(latin, 'mae', tmp_path / 'r', 1, '--data-root', tmp_path)) == 2
    assert f'{latin}, line 2: not UTF-8' in capsys.readouterr().err


def test_a_truncated_video_is_called_truncated(tmp_path, capsys):
    from ppma.core import write_video
    import numpy as np
    write_video(tmp_path / 'v.mkv', [np.full((64, 80, 3), 10 * i, np.uint8) for i in range(20)])
    truncate_file(tmp_path / 'v.mkv', 0.6)
    (tmp_path / 'l.csv').write_text('v.mkv;0\n')
    assert main(['data', 'scan', str(tmp_path / 'l.csv'), str(tmp_path), '--workers', '1']) == 1
    out = capsys.readouterr().out
    assert 'truncated' in out and not out.startswith('UNREADABLE v.mkv: PermissionError')


def test_a_bad_checkpoint_is_named_and_never_unpickled_unsafely(tmp_path, capsys):
    # seeds whose 300 random bytes fail the unpickler with UnpicklingError, IndexError, KeyError, UnicodeDecodeError
    for seed in (0, 2, 20, 195):
        (tmp_path / 'junk.pt').write_bytes(random.Random(seed).randbytes(300))
        assert main(['convert', str(tmp_path / 'junk.pt'), str(tmp_path / 'o.pt'), '--to', 'ppma']) == 2
        err = capsys.readouterr().err
        assert str(tmp_path / 'junk.pt') in err and 'weights_only=False' not in err and 'Traceback' not in err
    torch.save({'fc.weight': torch.zeros(2, 2)}, tmp_path / 'foreign.pt')
    assert main(['convert', str(tmp_path / 'foreign.pt'), str(tmp_path / 'o.pt'), '--to', 'ppma']) == 2
    assert str(tmp_path / 'foreign.pt') in capsys.readouterr().err


def test_a_packaged_card_without_a_data_root_says_so(tmp_path, capsys):
    assert main(['train', '--stage', 'mae', '--data', 'ucf101', '--out-dir', str(tmp_path / 'r'), '--epochs', '1']) == 2
    assert 'data_root' in capsys.readouterr().err and not (tmp_path / 'r').exists()


# 11. files colleagues can read, no leftovers, no orphans, duplicates reported
def test_written_files_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try: save_checkpoint(tmp_path / 'c.pt', VideoViT(img_size=32, num_frames=4, embed_dim=32, depth=1, num_heads=2))
    finally: os.umask(old)
    assert (tmp_path / 'c.pt').stat().st_mode & 0o777 == 0o644


def test_a_dead_runs_temporary_files_are_removed_by_the_next_run(toy, tmp_path):
    out = tmp_path / 'run'
    assert main(train_args(toy, 'mae', out, 1)) == 0
    (out / '.checkpoint-last.pt.ppma999999999-x1.tmp.pt').write_bytes(b'half')   # a writer killed mid-write
    assert main(train_args(toy, 'mae', out, 1, '--resume')) == 0
    assert not list(out.glob('.*.tmp*'))


def test_no_failure_logs_are_left_in_the_temporary_folder(toy, tmp_path):
    code = ('from ppma.data import VideoClipDataset, read_split; import sys; '
            f'd = VideoClipDataset(read_split(r"{Path(toy).parent / "train.csv"}"), r"{Path(toy).parent}", 4, 0.6, 32); d[0]')
    subprocess.run([sys.executable, '-c', code], check=True, env={**os.environ, 'TMPDIR': str(tmp_path)}, timeout=120)
    assert not list(tmp_path.glob('ppma-failures-*'))


def test_workers_exit_with_a_killed_parent(tmp_path):
    write_test_video(tmp_path / 'v.mp4', n=12, h=32, w=32)
    (tmp_path / 'l.csv').write_text('v.mp4;0\n' * 4000)
    p = subprocess.Popen([sys.executable, PPMA, 'data', 'scan', str(tmp_path / 'l.csv'), str(tmp_path), '--workers', '2'],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    children = lambda: [int(c) for c in Path(f'/proc/{p.pid}/task/{p.pid}/children').read_text().split()]
    deadline = time.time() + 60
    while time.time() < deadline and len(children()) < 2: time.sleep(0.05)
    kids = children()
    assert len(kids) >= 2, 'the workers did not start'
    p.kill(); p.wait()
    deadline = time.time() + 20
    alive = lambda: [k for k in kids if Path(f'/proc/{k}').exists() and 'Z' not in Path(f'/proc/{k}/stat').read_text().split()[2]]
    while time.time() < deadline and alive(): time.sleep(0.1)
    assert not alive(), 'workers outlived their parent'


def test_data_check_reports_duplicate_rows(toy, tmp_path, capsys):
    dup = tmp_path / 'train.csv'
    dup.write_text(rows(toy) + rows(toy).splitlines()[0] + '\n')
    assert main(['data', 'check', str(toy), str(Path(toy).parent), '--split', f'train={dup}', '--no-decode']) == 1
    assert 'more than once' in capsys.readouterr().out


def test_a_symlinked_dataset_root_keeps_working(toy, tmp_path, capsys):
    (tmp_path / 'link').symlink_to(Path(toy).parent, target_is_directory=True)
    assert main(['data', 'check', str(toy), str(tmp_path / 'link'), '--workers', '1']) == 0
    assert main(train_args(toy, 'mae', tmp_path / 'run', 1, '--data-root', tmp_path / 'link')) == 0


def test_a_rerun_keeps_finished_runs_as_make_demo_does(toy, tmp_path):
    from ppma.training import train
    kw = dict(data=str(toy), epochs=1, batch_size=6, resume=True, skip_finished=True, **TINY)
    mae = train('mae', out_dir=tmp_path / 'mae', **kw)['checkpoint']
    shutil.copy(mae, tmp_path / 'same.pt')
    avg = dict(init=[mae, tmp_path / 'same.pt'], mix='learned', out_dir=tmp_path / 'avg', **kw)
    train('average', **avg)
    kept, results = tree(tmp_path / 'avg'), (tmp_path / 'results.csv').read_text()
    assert train('mae', out_dir=tmp_path / 'mae', **kw)['skipped'] and train('average', **avg)['skipped']
    assert tree(tmp_path / 'avg') == kept and (tmp_path / 'results.csv').read_text() == results   # no second row


# found in review: each of these failed before its fix
def test_sigterm_stops_a_cached_linear_probe(toy, tmp_path):
    save_checkpoint(tmp_path / 'mae.pt', create_model('vit_tiny_cpu', mae=True, img_size=32, num_frames=4))
    out = tmp_path / 'lp'
    p = subprocess.Popen([sys.executable, PPMA, *train_args(toy, 'linear_probe', out, 100000, '--init', tmp_path / 'mae.pt')],
                         cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not (out / 'metrics.jsonl').exists(): time.sleep(0.1)
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=60) == 143, p.stderr.read()[-1000:]


def test_a_fixed_average_never_rewrites_a_finished_runs_files(toy, tmp_path):
    from ppma.training import train
    for i in range(3):
        torch.manual_seed(i); save_checkpoint(tmp_path / f'm{i}.pt', create_model('vit_tiny_cpu', img_size=32, num_frames=4))
    kw = dict(data=str(toy), mix='fixed', epochs=1, batch_size=6, out_dir=tmp_path / 'avg', **TINY)
    train('average', init=[tmp_path / 'm0.pt', tmp_path / 'm1.pt'], **kw)
    kept = tree(tmp_path / 'avg')
    with pytest.raises(ValueError, match='holds a finished run'): train('average', init=[tmp_path / 'm0.pt', tmp_path / 'm2.pt'], **kw)
    assert tree(tmp_path / 'avg') == kept


def test_a_finished_run_with_other_settings_is_not_kept(toy, tmp_path, capsys):
    assert main(train_args(toy, 'mae', tmp_path / 'run', 1)) == 0
    assert main(train_args(toy, 'mae', tmp_path / 'run', 2, '--resume')) == 2
    assert 'other settings (epochs)' in capsys.readouterr().err


def test_evaluate_takes_a_validation_list_that_lacks_a_class(toy, tmp_path):
    save_checkpoint(tmp_path / 'c3.pt', create_model('vit_tiny_cpu', img_size=32, num_frames=4, num_classes=3))
    rows_ = [r for r in (Path(toy).parent / 'val.csv').read_text().splitlines() if not r.endswith(';1')]
    (tmp_path / 'v.csv').write_text('\n'.join(rows_) + '\n')
    assert main(['evaluate', str(tmp_path / 'c3.pt'), str(tmp_path / 'v.csv'), str(Path(toy).parent), '--out-dir',
                 str(tmp_path / 'ev'), '--clips', '1', '--crops', '1', '--workers', '0']) == 0


def test_a_partial_foreign_checkpoint_is_refused(tmp_path, capsys):
    sd = create_model('vit_tiny_cpu', img_size=32, num_frames=4).state_dict()
    del sd['norm.weight'], sd['blocks.1.mlp.fc1.weight']
    torch.save(sd, tmp_path / 'partial.pt')
    assert main(['convert', str(tmp_path / 'partial.pt'), str(tmp_path / 'o.pt'), '--to', 'ppma']) == 2
    assert 'partial.pt' in capsys.readouterr().err and not (tmp_path / 'o.pt').exists()


def test_remove_humans_writes_beside_a_single_video(tmp_path):
    write_test_video(tmp_path / 'clip.mp4', n=12, h=64, w=80)
    before = (tmp_path / 'clip.mp4').read_bytes()
    assert main(['remove-humans', str(tmp_path / 'clip.mp4'), str(tmp_path / 'nohuman'), '--workers', '1', '--no-audit']) == 0
    assert (tmp_path / 'clip.mp4').read_bytes() == before and (tmp_path / 'nohuman' / 'manifest.jsonl').exists()


@pytest.mark.parametrize('extra,named', [(['--set', 'seed=3'], '--seed'), (['--set', 'size=33'], 'size=33'),
                                         (['--set', 'clip_seconds=-1'], 'clip_seconds=')])
def test_more_settings_are_refused_with_a_message(toy, tmp_path, capsys, extra, named):
    assert main(train_args(toy, 'mae', tmp_path / 'run', 1) + extra) == 2
    assert named in capsys.readouterr().err and not (tmp_path / 'run').exists()
