"`ppma remove-humans --shard K/N` on N machines, then `ppma merge-shards`, gives what one run gives."
import json
from pathlib import Path

import pytest
import yaml

from ppma.cli import main
from ppma.data import open_video
from ppma.remove_humans import remove_humans
from ppma.testing import write_test_video

VOLATILE = {'seconds', 'timings'}          # wall times differ between any two runs


def dataset(tmp_path, n=5):
    "A split list of `n` short videos under a root, with labels."
    for i in range(n): write_test_video(tmp_path / 'root' / 'clips' / f'v{i}.mp4', n=12 + i, h=64, w=80)
    lst = tmp_path / 'list.csv'
    lst.write_text(''.join(f'clips/v{i}.mp4;{i % 3}\n' for i in range(n)))
    return lst, tmp_path / 'root'


def records(out):
    "`{path: manifest record without wall times}` of an output folder."
    recs = [json.loads(l) for l in (Path(out) / 'manifest.jsonl').read_text().splitlines()]
    return {r['path']: {k: v for k, v in r.items() if k not in VOLATILE} for r in recs}


def card(out):
    """The card's front matter (parsed: YAML folds long strings at other places when the path's length differs) and
    body, with the output folder's path and name (the default dataset name) blanked."""
    _, front, body = (Path(out) / 'card.md').read_text().split('---\n', 2)
    meta = {**yaml.safe_load(front), 'name': 'OUT'}
    return (json.dumps(meta, sort_keys=True) + body).replace(str(out), 'OUT')


def test_two_shards_and_a_merge_equal_one_run(tmp_path):
    lst, root = dataset(tmp_path)
    args = [str(lst), '--root', str(root), '--workers', '1']
    assert main(['remove-humans', *args[:1], str(tmp_path / 'one'), *args[1:]]) == 0
    many = tmp_path / 'many'
    for k in (1, 0):                                                   # any order, as an array's tasks would finish
        assert main(['remove-humans', *args[:1], str(many), *args[1:], '--shard', f'{k}/2']) == 0
        assert not (many / 'card.md').exists() and not (many / 'manifest.jsonl').exists()   # the merge writes these
    assert sorted(p.name for p in (many / 'shards').iterdir() if not p.name.startswith('.')) == [
        'manifest-0-of-2.jsonl', 'manifest-1-of-2.jsonl', 'shard-0-of-2.json', 'shard-1-of-2.json']
    assert main(['merge-shards', str(many)]) == 0

    assert (many / 'videos.csv').read_text() == (tmp_path / 'one' / 'videos.csv').read_text()
    assert records(many) == records(tmp_path / 'one')
    assert list(records(many)) == [f'clips/v{i}.mp4' for i in range(5)]          # the merged manifest is in list order
    assert card(many) == card(tmp_path / 'one')
    for i in range(5):
        a, b = (open_video(d / 'clips' / f'v{i}.mp4') for d in (many, tmp_path / 'one'))
        assert (a.get(list(range(a.num_frames))) == b.get(list(range(b.num_frames)))).all()


def test_a_merge_with_a_shard_missing_names_it_and_writes_nothing(tmp_path, capsys):
    lst, root = dataset(tmp_path, n=3)
    out = tmp_path / 'out'
    remove_humans(lst, out, root=root, workers=1, progress=False, shard='0/3')
    remove_humans(lst, out, root=root, workers=1, progress=False, shard='2/3')
    assert main(['merge-shards', str(out)]) == 2
    assert 'shard(s) 1/3 not finished' in capsys.readouterr().err
    assert not (out / 'card.md').exists() and not (out / 'videos.csv').exists()


@pytest.mark.parametrize('shard', ['2/2', '1', 'x/4', '3/2'])
def test_a_bad_shard_is_refused_before_any_work(tmp_path, capsys, shard):
    lst, root = dataset(tmp_path, n=2)
    assert main(['remove-humans', str(lst), str(tmp_path / 'out'), '--root', str(root), '--shard', shard]) == 2
    assert 'shard' in capsys.readouterr().err and not (tmp_path / 'out').exists()


def test_one_shard_at_a_time_per_part(tmp_path):
    "A second process on the same shard is refused (its lock); another shard of the same output is not."
    from ppma.runs import lock_run
    lst, root = dataset(tmp_path, n=2)
    held = lock_run(tmp_path / 'out' / 'shards', '.lock-0-of-2')
    try:
        with pytest.raises(ValueError, match='in use'):
            remove_humans(lst, tmp_path / 'out', root=root, workers=1, progress=False, shard='0/2')
        remove_humans(lst, tmp_path / 'out', root=root, workers=1, progress=False, shard='1/2')
    finally: held.close()


def test_a_lock_kept_by_the_workers_of_a_killed_run_is_taken_once_they_exit(tmp_path):
    "Forked workers share their parent's lock; after the parent is killed they take a moment to go, and the next run waits."
    import subprocess, sys, time
    from ppma.runs import lock_run
    code = ("import os, time; from ppma.runs import lock_run; f = lock_run(%r)\n"
            "if os.fork() == 0: time.sleep(1.5); os._exit(0)\n"        # a worker, still holding the lock
            "os._exit(0)") % str(tmp_path / 'out')                       # its parent dies at once
    subprocess.run([sys.executable, '-c', code], check=True)
    t0 = time.monotonic()
    lock_run(tmp_path / 'out').close()                                  # waited for the worker, then took it
    assert 0.5 < time.monotonic() - t0 < 9
