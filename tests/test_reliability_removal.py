"`ppma remove-humans` writes only under its output folder, and a video that kills its worker is recorded, not fatal."
import faulthandler, hashlib, json, os, resource, signal, subprocess, sys
from pathlib import Path

import pytest

from ppma import remove_humans
from ppma.cli import main
from ppma.data import open_video
from ppma.testing import write_test_video

REAL_WORK = remove_humans._work


def digest(folder):
    "`{relative path: sha256}` of every file under `folder`."
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(Path(folder).rglob('*')) if p.is_file()}


def manifest(out):
    "`(all records, latest record per path)` of an output folder's manifest."
    recs = [json.loads(l) for l in (Path(out) / 'manifest.jsonl').read_text().splitlines()]
    return recs, {r['path']: r for r in recs}


def videos(folder, names, h=64, w=80):
    for n in names: write_test_video(Path(folder) / n, n=20, h=h, w=w)
    return Path(folder)


# ---------------------------------------------------------------- containment

@pytest.mark.parametrize('bad_row', ['abs', 'up'])
def test_a_list_row_that_escapes_is_refused_and_no_source_is_touched(tmp_path, capsys, bad_row):
    src = videos(tmp_path / 'src', ['a.mp4'])                          # a folder beside the dataset root
    root = videos(tmp_path / 'root', ['ok.mp4'])
    row = str(src / 'a.mp4') if bad_row == 'abs' else '../src/a.mp4'
    lst = tmp_path / 'list.csv'
    lst.write_text(f'ok.mp4;0\n{row};0\n')
    before = digest(tmp_path)
    rc = main(['remove-humans', str(lst), str(tmp_path / 'out'), '--root', str(root), '--workers', '1', '--no-audit'])
    err = capsys.readouterr().err
    assert rc != 0
    assert str(lst) in err and 'line 2' in err, err                     # names the list file and the line
    assert digest(tmp_path) == before                                    # nothing written or changed anywhere
    assert not (tmp_path / 'out' / 'manifest.jsonl').exists()            # refused before any work


def test_an_absolute_row_with_root_slash_does_not_overwrite_the_video(tmp_path, capsys):
    "The issue's example: `printf '/abs/a.mp4;0\\n' > l.csv; ppma remove-humans l.csv out --root /`."
    src = videos(tmp_path / 'abs', ['a.mp4'])
    before = digest(src)
    lst = tmp_path / 'l.csv'
    lst.write_text(f'{src / "a.mp4"};0\n')
    rc = main(['remove-humans', str(lst), str(tmp_path / 'out'), '--root', '/', '--workers', '1', '--no-audit'])
    err = capsys.readouterr().err
    assert rc == 2 and ('out_dir' in err or f'{lst}, line 1' in err), err    # --root / holds out_dir (and the row is absolute)
    assert digest(src) == before                                         # same bytes, no preview PNG beside it


@pytest.mark.parametrize('case', ['out inside the folder', 'out is the video folder', 'out contains the folder', 'out inside --root'])
def test_an_output_folder_overlapping_the_input_is_refused(tmp_path, capsys, case):
    inp = videos(tmp_path / 'in', ['v.mp4'])
    lst = tmp_path / 'list.csv'
    lst.write_text('v.mp4;0\n')
    args = {'out inside the folder': [str(inp), str(inp / 'out')],
            'out is the video folder': [str(inp / 'v.mp4'), str(inp)],
            'out contains the folder': [str(inp), str(tmp_path)],
            'out inside --root': [str(lst), str(inp / 'nohuman'), '--root', str(inp)]}[case]
    before = digest(tmp_path)
    rc = main(['remove-humans', *args, '--workers', '1', '--no-audit'])
    err = capsys.readouterr().err
    assert rc == 2 and 'out_dir' in err, err                             # names the parameter
    assert digest(tmp_path) == before                                    # and writes nothing anywhere
    assert not (inp / 'out').exists() and not (inp / 'nohuman').exists()


def test_leftovers_of_a_dead_run_are_removed(tmp_path):
    inp = videos(tmp_path / 'in', ['v.mp4'])
    dead = subprocess.Popen([sys.executable, '-c', 'pass']); dead.wait()  # a pid that no longer runs
    stale = tmp_path / 'out' / f'.v.mp4.ppma{dead.pid}-x1.tmp.mp4'
    stale.parent.mkdir(); stale.write_bytes(b'half a video')
    assert main(['remove-humans', str(inp), str(tmp_path / 'out'), '--workers', '1', '--no-audit']) == 0
    assert not stale.exists()


# ---------------------------------------------------------------- crash isolation

def test_a_48x48_video_among_normal_ones_is_processed(tmp_path):
    "OpenCV's HOG segfaulted on frames smaller than its window; the run died with BrokenProcessPool."
    inp = videos(tmp_path / 'in', ['a.mp4', 'c.mp4'])
    write_test_video(inp / 'b_small.mp4', n=20, h=48, w=48)
    assert main(['remove-humans', str(inp), str(tmp_path / 'out'), '--workers', '2']) == 0   # audit on: its HOG too
    _, last = manifest(tmp_path / 'out')
    assert {p: r['status'] for p, r in last.items()} == {'a.mp4': 'ok', 'b_small.mp4': 'ok', 'c.mp4': 'ok'}
    assert open_video(tmp_path / 'out' / 'b_small.mp4').num_frames == 20
    assert open_video(tmp_path / 'out' / 'a.mp4').num_frames == 20


def die_on_v0(args):
    "The real work, except that the process dies on `v0.mp4` (by SIGSEGV, or os._exit(3) with PPMA_TEST_EXIT set)."
    if Path(args[0]).name == 'v0.mp4':
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0)); faulthandler.disable()      # no core file, no traceback
        if os.environ.get('PPMA_TEST_EXIT'): os._exit(3)
        os.kill(os.getpid(), signal.SIGSEGV)
    return REAL_WORK(args)


def test_a_video_that_segfaults_its_worker_is_recorded_failed_and_not_retried(tmp_path, monkeypatch):
    inp = videos(tmp_path / 'in', [f'v{i}.mp4' for i in range(4)])
    out = tmp_path / 'out'
    monkeypatch.setattr(remove_humans, '_work', die_on_v0)
    cmd = ['remove-humans', str(inp), str(out), '--workers', '2', '--no-audit']
    assert main(cmd) == 1                                                # finishes; one video failed
    recs, last = manifest(out)
    assert last['v0.mp4']['status'] == 'failed' and 'worker died (signal 11' in last['v0.mp4']['error'], last['v0.mp4']
    assert all(last[f'v{i}.mp4']['status'] == 'ok' and (out / f'v{i}.mp4').exists() for i in (1, 2, 3))
    assert not (out / 'v0.mp4').exists()
    assert 'v0.mp4' not in (out / 'videos.csv').read_text()
    assert main(cmd) == 1                                                # a rerun does not try it again
    assert manifest(out)[0] == recs
    monkeypatch.setattr(remove_humans, '_work', REAL_WORK)
    assert main(cmd + ['--retry-failed']) == 0                           # unless asked (and then it can succeed)
    recs2, last = manifest(out)
    assert [r['path'] for r in recs2[len(recs):]] == ['v0.mp4'] and last['v0.mp4']['status'] == 'ok'
    assert (out / 'v0.mp4').exists() and 'v0.mp4' in (out / 'videos.csv').read_text()


def test_a_worker_that_exits_is_recorded_and_retry_failed_tries_it_again(tmp_path, monkeypatch):
    inp = videos(tmp_path / 'in', ['v0.mp4', 'v1.mp4'])
    out = tmp_path / 'out'
    monkeypatch.setattr(remove_humans, '_work', die_on_v0)
    monkeypatch.setenv('PPMA_TEST_EXIT', '1')
    recs = remove_humans.remove_humans(inp, out, workers=1, audit=False, progress=False)
    assert {r['path']: (r['status'], r['error']) for r in recs} == {'v0.mp4': ('failed', 'worker died (exit code 3)'), 'v1.mp4': ('ok', None)}
    n = len(manifest(out)[0])
    remove_humans.remove_humans(inp, out, workers=1, audit=False, progress=False)
    assert len(manifest(out)[0]) == n                                    # skipped
    recs = remove_humans.remove_humans(inp, out, workers=1, audit=False, progress=False, retry_failed=True)
    all_recs, last = manifest(out)
    assert [r['path'] for r in all_recs[n:]] == ['v0.mp4']               # tried again (and died again)
    assert last['v0.mp4']['status'] == 'failed' and last['v1.mp4']['status'] == 'ok'


def _frames_in_a_forked_worker(tmp_path, convert):
    "Decode a video here (PyAV), then the same in a fork-context worker, as `remove-humans` does after `make demo`'s reads."
    from concurrent.futures import TimeoutError as Timeout
    from ppma import prepare
    from ppma.core import process_pool
    video = tmp_path / 'clip.mp4'
    write_test_video(video, n=8, h=480, w=640)
    old, prepare.rgb = prepare.rgb, convert
    try:
        assert len(remove_humans.read_video(video)[0]) == 8          # the parent's converter threads start here
        pool = process_pool(1)
        try: return len(pool.submit(remove_humans.read_video, video).result(timeout=60)[0])
        except Timeout: return None
        finally:
            for p in pool._processes.values(): p.kill()
            pool.shutdown(wait=False, cancel_futures=True)
    finally:
        prepare.rgb = old


def test_a_forked_worker_decodes_after_its_parent_did(tmp_path):
    "FFmpeg's converter threads, started in the parent, deadlock a forked child (seen: `make demo` hung); one thread does not."
    from ppma.data import rgb
    assert _frames_in_a_forked_worker(tmp_path, rgb) == 8
