"Reliability, second round (issue 27): evaluations that score what was asked, lists read strictly, refusals up front."
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch

from ppma.checkpoints import save_checkpoint
from ppma.cli import main
from ppma.data import read_split
from ppma.models import create_model

from conftest import TINY

SETS = [a for k, v in TINY.items() if k != 'workers' for a in ('--set', f'{k}={v}')]


def train_args(toy, stage, out, *extra):
    return ['train', '--stage', stage, '--data', str(toy), '--epochs', '1', '--batch-size', '6', '--workers', '0',
            '--out-dir', str(out), *SETS, *extra]


def evaluate_args(ck, data, tmp_path, *extra):
    return ['evaluate', str(ck), str(data), str(Path(data).parent), '--out-dir', str(tmp_path / 'ev'), '--clips', '1',
            '--crops', '1', '--workers', '0', *extra]


# 6. a plain state dict of the project's own model was rebuilt with 2 heads (of 4) at 224 px and 16 frames
def test_a_plain_state_dict_of_our_model_is_rebuilt_as_it_was(toy, tmp_path):
    out = tmp_path / 'ft'
    assert main(train_args(toy, 'finetune', out, '--set', 'size=64', '--set', 'num_frames=8')) == 0
    ck = torch.load(out / 'checkpoint.pt', weights_only=True)
    torch.save(ck['model'], tmp_path / 'plain.pt')                     # weights only: no arguments saved beside them
    assert main(evaluate_args(out / 'checkpoint.pt', toy, tmp_path, '--recipe', 'ours')) == 0
    assert main(evaluate_args(tmp_path / 'plain.pt', toy, tmp_path, '--recipe', 'plain')) == 0
    rows = pd.read_csv(tmp_path / 'results.csv').set_index('recipe')
    assert (rows.loc['plain', 'img_size'], rows.loc['plain', 'num_frames']) == (64, 8)   # vit_tiny_cpu's, not 224/16
    assert rows.loc['plain', 'top1'] == rows.loc['ours', 'top1'] and rows.loc['plain', 'top5'] == rows.loc['ours', 'top5']


def test_evaluate_takes_the_sizes_a_file_cannot_say(toy, tmp_path):
    "A foreign layout of unknown heads and sizes: --num-heads, --img-size, --num-frames build it, the row records them."
    m = create_model('vit_tiny', num_classes=3, img_size=48, num_frames=4, depth=2)    # 192 wide, 2 blocks: not ours
    torch.save(m.state_dict(), tmp_path / 'foreign.pt')
    assert main(evaluate_args(tmp_path / 'foreign.pt', toy, tmp_path, '--num-heads', '3', '--img-size', '48',
                              '--num-frames', '4')) == 0
    row = pd.read_csv(tmp_path / 'results.csv').iloc[-1]
    assert (row.img_size, row.num_frames) == (48, 4)


# 7. four of six validation videos missing: evaluate exited 0 with a top-1 over two videos
def test_evaluate_refuses_missing_videos_unless_allowed_and_records_them(toy, tmp_path):
    out = tmp_path / 'ft'
    assert main(train_args(toy, 'finetune', out)) == 0
    data = tmp_path / 'data'
    shutil.copytree(Path(toy).parent, data, symlinks=True)
    gone = [r for r, _ in read_split(data / 'val.csv')][:4]
    for r in gone: (data / r).unlink()
    card = data / Path(toy).name
    assert main(evaluate_args(out / 'checkpoint.pt', card, tmp_path)) == 2
    assert not (tmp_path / 'results.csv').exists() or len(pd.read_csv(tmp_path / 'results.csv')) == 1
    assert main(evaluate_args(out / 'checkpoint.pt', card, tmp_path, '--allow-missing')) == 0
    row = pd.read_csv(tmp_path / 'results.csv').iloc[-1]
    assert (row.videos, row.missing) == (2, 4)


def test_evaluate_names_the_missing_videos(toy, tmp_path, capsys):
    out = tmp_path / 'ft'
    assert main(train_args(toy, 'finetune', out)) == 0
    data = tmp_path / 'data'
    shutil.copytree(Path(toy).parent, data, symlinks=True)
    first = read_split(data / 'val.csv')[0][0]
    (data / first).unlink()
    assert main(evaluate_args(out / 'checkpoint.pt', data / Path(toy).name, tmp_path)) == 2
    err = capsys.readouterr().err
    assert '1 of 6 held-out videos are missing' in err and first in err and '--allow-missing' in err


# 9. smaller: an all-missing validation list found only after training; a one-class list; labels read loosely
def test_an_all_missing_validation_list_is_refused_before_training(toy, tmp_path, capsys):
    val = tmp_path / 'val.csv'
    val.write_text('nowhere/a.mp4;0\nnowhere/b.mp4;1\n')
    out = tmp_path / 'run'
    assert main(train_args(toy, 'finetune', out, '--val', str(val))) == 2
    assert '2 of 2 held-out videos are missing' in capsys.readouterr().err and not out.exists()


def test_a_one_class_list_is_refused_for_a_classifier(toy, tmp_path, capsys):
    root = Path(toy).parent
    one = tmp_path / 'one.csv'
    one.write_text(''.join(l + '\n' for l in (root / 'train.csv').read_text().splitlines() if l.endswith(';0')))
    shutil.copytree(root / 'train', tmp_path / 'train', symlinks=True)
    out = tmp_path / 'run'
    assert main(train_args(one, 'finetune', out, '--no-val', '--data-root', str(tmp_path))) == 2
    assert 'one class leaves nothing to learn' in capsys.readouterr().err and not out.exists()


@pytest.mark.parametrize('label', ['1_0', '\uff11', '+1'])
def test_a_label_is_plain_digits(tmp_path, label):
    "int() reads '1_0' as 10 and a full-width one as 1: both were taken as labels."
    (tmp_path / 'l.csv').write_text(f'a.mp4;0\nb.mp4;{label}\n')
    with pytest.raises(ValueError, match=r'l\.csv, line 2: label .* is not a whole number'):
        read_split(tmp_path / 'l.csv')


# 5. convert overwrote a checkpoint without a word; in a Hugging Face folder it left an old shard and a stale index
def test_convert_keeps_an_existing_target_unless_told(toy, tmp_path, capsys):
    out = tmp_path / 'ft'
    assert main(train_args(toy, 'finetune', out)) == 0
    mine = tmp_path / 'mine.pt'
    mine.write_bytes(b'a checkpoint of mine')
    assert main(['convert', str(out / 'checkpoint.pt'), str(mine), '--to', 'ppma']) == 2
    assert '--overwrite' in capsys.readouterr().err and mine.read_bytes() == b'a checkpoint of mine'
    assert main(['convert', str(out / 'checkpoint.pt'), str(mine), '--to', 'ppma', '--overwrite']) == 0
    assert torch.load(mine, weights_only=True)['format'] == 'ppma'


def test_convert_replaces_a_hugging_face_folder_whole_with_the_umasks_modes(toy, tmp_path):
    pytest.importorskip('transformers')
    import os
    out, hf = tmp_path / 'ft', tmp_path / 'hf'
    assert main(train_args(toy, 'finetune', out)) == 0
    hf.mkdir()
    for stale in ('pytorch_model-00001-of-00002.bin', 'model.safetensors.index.json'): (hf / stale).write_text('old')
    assert main(['convert', str(out / 'checkpoint.pt'), str(hf), '--to', 'hf']) == 2
    assert sorted(p.name for p in hf.iterdir()) == ['model.safetensors.index.json', 'pytorch_model-00001-of-00002.bin']
    old = os.umask(0o022)
    try: assert main(['convert', str(out / 'checkpoint.pt'), str(hf), '--to', 'hf', '--overwrite']) == 0
    finally: os.umask(old)
    names = sorted(p.name for p in hf.iterdir())
    assert 'model.safetensors' in names and not any('00001' in n or 'index' in n for n in names)
    assert all(p.stat().st_mode & 0o777 == 0o644 for p in hf.iterdir())
    assert not list(tmp_path.glob('.hf.*'))                       # no temporary folder left beside it


def test_a_killed_run_leaves_no_empty_failure_logs(toy, tmp_path):
    "kill -9 during training left empty /tmp/ppma-failures-*.jsonl files behind, one per dataset, forever."
    import os
    import subprocess
    import sys
    code = ('import os, signal; from ppma.data import VideoClipDataset, read_split; '
            f'd = VideoClipDataset(read_split(r"{Path(toy).parent / "train.csv"}"), r"{Path(toy).parent}", 4, 0.6, 32); '
            'd[0]; os.kill(os.getpid(), signal.SIGKILL)')
    env = {**os.environ, 'TMPDIR': str(tmp_path)}
    subprocess.run([sys.executable, '-c', code], env=env, timeout=120)
    assert not list(tmp_path.glob('ppma-failures-*'))
    (tmp_path / 'ppma-failures-999999999-0.jsonl').write_text('{"path": "a", "error": "x"}\n')   # a dead writer's
    subprocess.run([sys.executable, '-c', code.replace('os.kill(os.getpid(), signal.SIGKILL)', 'pass')], env=env,
                   timeout=120, check=True)
    assert not list(tmp_path.glob('ppma-failures-*'))


def test_a_file_name_with_a_line_break_is_refused_before_removal(tmp_path, capsys):
    "A newline in a file name split its videos.csv row in two."
    from ppma.testing import write_test_video
    write_test_video(tmp_path / 'in' / 'fine.mp4', n=8, h=32, w=32)
    write_test_video(tmp_path / 'in' / 'two\nlines.mp4', n=8, h=32, w=32)
    assert main(['remove-humans', str(tmp_path / 'in'), str(tmp_path / 'out'), '--detector', 'hog', '--workers', '1']) == 2
    assert 'line break' in capsys.readouterr().err and not (tmp_path / 'out' / 'videos.csv').exists()


# 1, 2, 4. removal outputs: one identity per folder (inputs' content, byte-changing flags), shards and whole runs exclusive
def removal_data(tmp_path, n=4):
    from ppma.testing import write_test_video
    for i in range(n): write_test_video(tmp_path / 'root' / 'clips' / f'v{i}.mp4', n=10, h=64, w=80)
    lst = tmp_path / 'lists' / 'list.csv'
    lst.parent.mkdir()
    lst.write_text(''.join(f'clips/v{i}.mp4;{i % 2}\n' for i in range(n)))
    return lst, tmp_path / 'root'


def tree(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(Path(folder).rglob('*')) if p.is_file()}


def removal(lst, root, out, *extra):
    return main(['remove-humans', str(lst), str(out), '--root', str(root), '--workers', '1', '--detector', 'hog', *extra])


def test_a_shard_with_other_flags_leaves_a_finished_output_as_it_was(tmp_path, capsys):
    "A shard run with --max-side 64 replaced 8 of 16 finished videos while the manifest, list and card kept 192x256."
    lst, root = removal_data(tmp_path)
    out = tmp_path / 'out'
    assert removal(lst, root, out) == 0
    before = tree(out)
    assert removal(lst, root, out, '--shard', '0/2', '--max-side', '48') == 2
    assert "max_side None -> 48" in capsys.readouterr().err and tree(out) == before
    assert removal(lst, root, out, '--detector', 'ssdlite') == 2                 # 4: a rerun with another detector
    assert "detector 'hog' -> 'ssdlite'" in capsys.readouterr().err and tree(out) == before


def test_a_whole_run_and_a_shard_exclude_each_other(tmp_path, capsys):
    from ppma.runs import lock_run
    lst, root = removal_data(tmp_path)
    out = tmp_path / 'out'
    shard = lock_run(out, shared=True)                 # a shard of this output is running
    try:
        assert removal(lst, root, out) == 2
        assert 'in use' in capsys.readouterr().err
    finally: shard.close()
    whole = lock_run(out)                              # a whole run is
    try:
        assert removal(lst, root, out, '--shard', '1/2') == 2
        assert 'in use' in capsys.readouterr().err
    finally: whole.close()


def test_shards_of_an_edited_list_are_refused_and_a_respelled_list_is_the_same(tmp_path, capsys, monkeypatch):
    "A list edited in place (same row count) merged half-processed; the same list spelled ./a.csv and /abs/a.csv was refused."
    lst, root = removal_data(tmp_path)
    out = tmp_path / 'out'
    monkeypatch.chdir(tmp_path)
    assert removal(Path('lists') / 'list.csv', root, out, '--shard', '0/2') == 0
    assert removal(lst.resolve(), root, out, '--shard', '1/2') == 0              # the same rows, another spelling
    assert main(['merge-shards', str(out)]) == 0
    other = tmp_path / 'out2'
    assert removal(lst, root, other, '--shard', '0/2') == 0
    lst.write_text(lst.read_text().replace('v3.mp4', 'v3b.mp4'))                 # edited in place, as many rows
    (root / 'clips' / 'v3.mp4').rename(root / 'clips' / 'v3b.mp4')
    assert removal(lst, root, other, '--shard', '1/2') == 2
    assert 'inputs' in capsys.readouterr().err
    assert removal(lst, root, other, '--shard', '1/2', '--overwrite') == 0     # redone from the new list
    assert not (other / 'shards' / 'shard-0-of-2.json').exists()               # the old shard's output is gone


def test_a_resize_into_an_output_of_another_size_is_refused(tmp_path, capsys):
    "data resize onto a 64 px output with --short-side 48 reported success and kept 64 px."
    from ppma.data import open_video
    lst, root = removal_data(tmp_path)
    out = tmp_path / 'small'
    assert main(['data', 'resize', str(lst), str(root), str(out), '--short-side', '32', '--workers', '1']) == 0
    before = tree(out)
    assert main(['data', 'resize', str(lst), str(root), str(out), '--short-side', '16', '--workers', '1']) == 2
    assert 'short_side=32' in capsys.readouterr().err and tree(out) == before
    assert main(['data', 'resize', str(lst), str(root), str(out), '--short-side', '16', '--workers', '1',
                 '--overwrite']) == 0
    assert open_video(out / 'clips' / 'v0.mp4').get([0]).shape[1] == 16


# 3. --resume accepted a changed training list, and run.json then recorded only the new one
def test_a_resume_with_other_training_rows_is_refused(toy, tmp_path, capsys):
    import signal
    import subprocess
    import sys
    import time
    root = Path(toy).parent
    lst = tmp_path / 'train.csv'
    lst.write_text((root / 'train.csv').read_text())
    out = tmp_path / 'run'
    args = ['train', '--stage', 'mae', '--data', str(lst), '--data-root', str(root), '--epochs', '50', '--batch-size', '6',
            '--workers', '0', '--out-dir', str(out), '--no-val', *SETS]
    p = subprocess.Popen([str(Path(sys.executable).parent / 'ppma'), *args], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not (out / 'checkpoint-last.pt').exists() and time.monotonic() < deadline: time.sleep(0.2)
    p.send_signal(signal.SIGTERM)                                          # preempted, resumable
    assert p.wait(timeout=120) == 143
    lst.write_text(''.join(l + '\n' for l in (root / 'train.csv').read_text().splitlines()[:-1]))   # a row dropped
    assert main([*args, '--resume']) == 2
    assert 'training rows' in capsys.readouterr().err


def test_an_earlier_output_inside_the_input_folder_is_refused(tmp_path, capsys):
    "An input folder holding an earlier output was processed again, its No-Human videos taken as new ones."
    from ppma.testing import write_test_video
    write_test_video(tmp_path / 'in' / 'v0.mp4', n=8, h=32, w=32)
    assert main(['remove-humans', str(tmp_path / 'in'), str(tmp_path / 'first'), '--detector', 'hog', '--workers', '1']) == 0
    shutil.move(tmp_path / 'first', tmp_path / 'in' / 'first')
    assert main(['remove-humans', str(tmp_path / 'in'), str(tmp_path / 'again'), '--detector', 'hog', '--workers', '1']) == 2
    assert 'earlier remove-humans output' in capsys.readouterr().err and not (tmp_path / 'again').exists()


# 8. rotation metadata: a phone-style clip came out of remove-humans sideways (PyAV ignored it, decord applied it)
def rotated_video(path, rotation=90):
    "A landscape-coded 48x32 clip with a display rotation, a white block at its coded top-left corner."
    import av
    import numpy as np
    frames = np.zeros((6, 32, 48, 3), np.uint8)
    frames[:, :8, :8] = 255
    c = av.open(str(path), 'w')
    s = c.add_stream('libx264', rate=12)
    s.width, s.height, s.pix_fmt = 48, 32, 'yuv420p'
    s.set_display_rotation(rotation)
    for f in frames:
        for p in s.encode(av.VideoFrame.from_ndarray(f, format='rgb24')): c.mux(p)
    for p in s.encode(): c.mux(p)
    c.close()
    return path


@pytest.mark.parametrize('rotation,corner', [(90, (47, 0)), (-90, (0, 31)), (180, (31, 47))])
def test_a_rotated_clip_reads_upright(tmp_path, rotation, corner):
    "The coded top-left block shows where the display rotation puts it; decord agrees for quarter turns."
    import numpy as np
    from ppma.data import HAS_DECORD, DecordVideo, PyAVVideo
    path = rotated_video(tmp_path / 'phone.mp4', rotation)
    with PyAVVideo(path) as v: a = v.get([0, 3])
    white = np.argwhere(a[0, ..., 0] > 128)
    assert a.shape[1:3] == ((32, 48) if rotation == 180 else (48, 32))
    assert np.abs(white.mean(0) - np.array(corner)).max() < 5, white.mean(0)        # near the corner it turns to
    if HAS_DECORD and rotation != 180:             # decord turns a half turn into a vertical flip: not compared
        b = DecordVideo(path).get([0, 3])
        assert b.shape == a.shape and np.abs(a.astype(int) - b.astype(int)).mean() < 2


def test_remove_humans_writes_a_rotated_clip_upright(tmp_path):
    from ppma.data import open_video
    (tmp_path / 'in').mkdir()
    rotated_video(tmp_path / 'in' / 'phone.mp4')
    assert main(['remove-humans', str(tmp_path / 'in'), str(tmp_path / 'out'), '--detector', 'hog', '--workers', '1']) == 0
    v = open_video(tmp_path / 'out' / 'phone.mp4', 'pyav')
    assert v.get([0]).shape[1:3] == (48, 32)


def vfr_video(path):
    "16 index-coded frames at irregular times (steps of 1 or 2 twenty-fifths of a second): a variable frame rate."
    from fractions import Fraction
    import av
    import numpy as np
    from ppma.testing import index_frames
    times = np.cumsum([0] + [1 if k % 3 else 2 for k in range(1, 16)])
    c = av.open(str(path), 'w')
    s = c.add_stream('libx264', rate=25)
    s.width = s.height = 32
    s.pix_fmt, s.time_base = 'yuv420p', Fraction(1, 25)
    for f, t in zip(index_frames(16, 32, 32), times):
        frame = av.VideoFrame.from_ndarray(f, format='rgb24')
        frame.pts, frame.time_base = int(t), Fraction(1, 25)
        for p in s.encode(frame): c.mux(p)
    for p in s.encode(): c.mux(p)
    c.close()
    return path


def test_a_variable_frame_rate_clip_gives_the_same_frames_by_time_from_both_decoders(tmp_path):
    "decord gave frames 0..15 by position, PyAV by time (and failed on an index without a frame of its own)."
    from ppma.data import HAS_DECORD, DecordVideo, PyAVVideo
    from ppma.testing import frame_index
    path = vfr_video(tmp_path / 'vfr.mp4')
    by_time = [0, 1, 2, 3, 4, 5, 6, 7, 8, 8, 10, 11, 11, 12, 14, 14]     # 20 fps grid over frames at irregular times
    with PyAVVideo(path) as v:
        assert [frame_index(x) for x in v.get(list(range(16)))] == by_time
        assert [frame_index(x) for x in v.get([12, 9])] == [11, 8]         # indices of their own, not in a run
    if HAS_DECORD:
        d = DecordVideo(path)
        assert [frame_index(x) for x in d.get(list(range(16)))] == by_time
        assert [frame_index(x) for x in d.get([12, 9])] == [11, 8]
