"""`ppma synth` reliability: the same bytes with any number of workers, resuming only with the same parameters, outputs
only under the output folder, no leftovers of killed runs, workers that die with the parent."""
import hashlib, os, signal, subprocess, sys, time
from pathlib import Path

import pytest

import ppma.synth
from ppma.cli import main
from ppma.data import open_video, read_split
from ppma.cards import load_card

FAST = ['--per-class', '2', '--size', '48', '--frames', '8', '--val-fraction', '0.5']


def hashes(root):
    "sha256 of every video under `root`, by relative path."
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(Path(root).rglob('*.mp4'))}


def sizes(root):
    "The frame sizes of every video under `root`."
    return {open_video(p).get([0]).shape[1:3] for p in Path(root).rglob('*.mp4')}


def synth(out, *args):
    return main(['synth', str(out), *args])


def cli(*args):
    "Start `ppma` in a process of its own, as a user does; returns the running process."
    code = f'import sys; from ppma.cli import main; sys.exit(main({list(map(str, args))!r}))'
    return subprocess.Popen([sys.executable, '-c', code], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def test_same_bytes_with_one_or_two_workers_and_from_run_to_run(tmp_path):
    # the issue's command: 3 of its 28 videos differed between two runs. x264's AVX-512 kernels read memory they never
    # wrote, so the bytes depended on what the process had allocated before (and where: separate runs, as here, differ
    # most). On CPUs without AVX-512 the old code passes too. Two runs in processes of their own and one in this one, side
    # by side, as separate users' would go.
    args = ['--seed', '7', '--per-class', '2', '--size', '64', '--frames', '16']
    runs = [cli('synth', tmp_path / d, *args, '--workers', w) for d, w in (('w1', '1'), ('w2', '2'))]
    assert synth(tmp_path / 'w2again', *args, '--workers', '2') == 0
    for r in runs:
        _, err = r.communicate(timeout=300)
        assert r.returncode == 0, err
    h1 = hashes(tmp_path / 'w1')
    assert len(h1) == 28
    for d in ('w2', 'w2again'):
        h = hashes(tmp_path / d)
        assert h.keys() == h1.keys()
        assert [k for k in h1 if h[k] != h1[k]] == [], f'{d}: other bytes than with one worker'


def test_resume_with_other_parameters_is_refused_naming_them_and_the_card(tmp_path, capsys):
    out = tmp_path / 'set'
    assert synth(out, '--classes', 'clapping,kicking', *FAST) == 0
    before = hashes(out)
    card = load_card(out / 'card.md')
    assert card['synth']['size'] == 48
    capsys.readouterr()
    for extra, named in ((['--size', '64'], ['size']), (['--seed', '3', '--frames', '10'], ['seed', 'frames']),
                         (['--style', 'stick'], ['style']), (['--classes', 'clapping,bowing'], ['classes'])):
        args = [*FAST, '--classes', 'clapping,kicking', *extra]
        assert synth(out, *args) == 2, extra
        err = capsys.readouterr().err
        assert err.startswith('ppma: error:') and str(out / 'card.md') in err, err
        assert all(n in err for n in named), (extra, err)
        assert hashes(out) == before                         # nothing was touched
        assert load_card(out / 'card.md')['synth']['size'] == 48
    assert sizes(out) == {(48, 48)}


def test_overwrite_regenerates_with_the_new_parameters_only(tmp_path):
    out = tmp_path / 'set'
    assert synth(out, '--classes', 'clapping,kicking', *FAST) == 0
    assert synth(out, '--classes', 'clapping,bowing', *FAST, '--size', '64', '--overwrite') == 0
    videos = sorted(hashes(out))
    assert videos == [f'videos/{c}/{c}_{i:04d}.mp4' for c in ('bowing', 'clapping') for i in range(2)]   # kicking gone
    assert sizes(out) == {(64, 64)}
    card = load_card(out / 'card.md')
    assert card['synth']['size'] == 64 and (out / 'classes.txt').read_text().split() == ['clapping', 'bowing']
    assert sorted(r for r, _ in read_split(out / 'train.csv') + read_split(out / 'val.csv')) == videos
    # and what is made from scratch with those parameters is the same, byte for byte
    assert synth(tmp_path / 'fresh', '--classes', 'clapping,bowing', *FAST, '--size', '64') == 0
    assert hashes(out) == hashes(tmp_path / 'fresh')
    assert sorted(p.name for p in out.iterdir()) == ['card.md', 'classes.txt', 'train.csv', 'val.csv', 'videos']


def test_resume_with_the_same_parameters_keeps_finished_videos(tmp_path):
    out = tmp_path / 'set'
    assert synth(out, '--classes', 'clapping,kicking', *FAST) == 0
    before = hashes(out)
    kept = out / 'videos/clapping/clapping_0000.mp4'
    stamp = kept.stat().st_mtime_ns, kept.stat().st_ino
    (out / 'videos/kicking/kicking_0001.mp4').unlink()
    assert synth(out, '--classes', 'clapping,kicking', *FAST) == 0
    assert (kept.stat().st_mtime_ns, kept.stat().st_ino) == stamp        # skipped, not rewritten
    assert hashes(out) == before                                         # the missing one is back, the same
    # videos that no card (or record of an unfinished run) accounts for are not mixed with others
    (out / 'card.md').unlink()
    (out / 'videos/kicking/kicking_0001.mp4').unlink()
    assert synth(out, '--classes', 'clapping,kicking', *FAST, '--size', '64') == 2
    assert sizes(out) == {(48, 48)}


_render_video = ppma.synth.render_video


def _dies_on_the_last_video(job):
    if job[0].endswith('kicking_0001.mp4'): raise OSError('killed')
    return _render_video(job)


def test_interrupted_run_resumes_only_with_its_own_parameters(tmp_path, capsys, monkeypatch):
    out = tmp_path / 'set'
    monkeypatch.setattr(ppma.synth, 'render_video', _dies_on_the_last_video)      # the workers are forked: they see it
    try: rc = synth(out, '--classes', 'clapping,kicking', *FAST, '--workers', '1')
    except OSError: rc = None
    assert rc != 0
    monkeypatch.setattr(ppma.synth, 'render_video', _render_video)
    assert not (out / 'card.md').exists() and len(hashes(out)) == 3
    capsys.readouterr()
    assert synth(out, '--classes', 'clapping,kicking', *FAST, '--size', '64') == 2
    err = capsys.readouterr().err
    assert 'size' in err and str(out) in err, err
    assert sizes(out) == {(48, 48)}
    assert synth(out, '--classes', 'clapping,kicking', *FAST) == 0
    assert sizes(out) == {(48, 48)} and len(hashes(out)) == 4
    assert synth(tmp_path / 'fresh', '--classes', 'clapping,kicking', *FAST) == 0
    assert hashes(out) == hashes(tmp_path / 'fresh')


@pytest.mark.parametrize('where', ['same', 'inside', 'contains'])
def test_output_folder_must_not_be_in_or_around_the_backgrounds(tmp_path, capsys, where):
    from ppma.testing import write_test_video
    bg = tmp_path / 'bg'
    write_test_video(bg / 'street.mp4', n=10, h=48, w=64)
    out, bg_arg = {'same': (bg, bg), 'inside': (bg / 'synth', bg), 'contains': (tmp_path, bg)}[where]
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob('*'))
    capsys.readouterr()
    assert synth(out, '--classes', 'clapping', '--per-class', '1', '--size', '48', '--frames', '8',
                 '--backgrounds', str(bg_arg)) == 2
    err = capsys.readouterr().err
    assert 'out_dir' in err and str(out) in err, err
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob('*')) == before      # nothing written


def test_leftovers_of_a_killed_run_are_removed(tmp_path):
    out = tmp_path / 'set'
    assert synth(out, '--classes', 'clapping', *FAST) == 0
    dead = subprocess.run([sys.executable, '-c', 'import os; print(os.getpid())'], capture_output=True, text=True)
    leftover = out / 'videos' / 'clapping' / f'.clapping_0001.mp4.ppma{int(dead.stdout)}-x1y2z3.tmp.mp4'
    leftover.write_bytes(b'half a video')
    assert synth(out, '--classes', 'clapping', *FAST) == 0
    assert not leftover.exists()


def _children(pid):
    "Pids of the live (not zombie) processes whose parent is `pid`."
    kids = []
    for d in Path('/proc').iterdir():
        if d.name.isdigit():
            try: stat = (d / 'stat').read_text()
            except OSError: continue
            state, ppid = stat.rsplit(')', 1)[1].split()[:2]
            if int(ppid) == pid and state != 'Z': kids.append(int(d.name))
    return kids


def _alive(pid):
    try: state = Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()[0]
    except OSError: return False
    return state != 'Z'


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='reads /proc')
def test_workers_die_with_a_killed_parent(tmp_path):
    out = tmp_path / 'set'
    code = f'from ppma.cli import main; main(["synth", {str(out)!r}, "--per-class", "40", "--size", "64", "--frames", "32", "--workers", "2"])'
    parent = subprocess.Popen([sys.executable, '-c', code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers = []
    try:
        t0 = time.time()
        while time.time() - t0 < 60 and not list(out.rglob('*.mp4')): time.sleep(0.1)
        workers = _children(parent.pid)
        assert len(workers) >= 2 and list(out.rglob('*.mp4'))
        parent.send_signal(signal.SIGKILL); parent.wait()
        t0 = time.time()
        while time.time() - t0 < 10 and any(_alive(w) for w in workers): time.sleep(0.1)
        assert not [w for w in workers if _alive(w)], 'workers outlived their parent'
    finally:
        if parent.poll() is None: parent.kill()
        for w in workers:
            if _alive(w): os.kill(w, signal.SIGKILL)
