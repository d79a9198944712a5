"The video pipeline on videos of known content made by ppma.testing."
import random
import threading

import numpy as np
import pytest
import torch

from ppma import data
from ppma.cli import main
from ppma.data import VideoClipDataset, collate, open_video, read_split
from ppma.cards import save_card
from ppma.testing import frame_index, make_dataset, truncate_file, write_frame_folder, write_garbage, write_test_video


def frames_of(clip):
    "Frame indices of a normalised clip `[C, T, H, W]` (un-normalised back to 0-255)."
    mean, std = torch.tensor(data.MEAN).view(3, 1, 1, 1), torch.tensor(data.STD).view(3, 1, 1, 1)
    x = (clip * std + mean) * 255
    return [frame_index(x[:, t].numpy()) for t in range(x.shape[1])]


@pytest.mark.parametrize('ext', ['mp4', 'avi', 'mkv', 'webm'])
def test_decord_and_pyav_agree(tmp_path, ext):
    path = write_test_video(tmp_path / f'v.{ext}', n=60, h=72, w=128)
    idx = sorted(np.random.default_rng(1).choice(60, 12, replace=False).tolist())
    a, b = open_video(path, 'decord').get(idx), open_video(path, 'pyav').get(idx)
    assert [frame_index(f) for f in a] == idx == [frame_index(f) for f in b]
    assert np.abs(a.astype(float) - b.astype(float)).mean() < 2


def test_train_clip_is_an_even_subsample_of_one_window(tmp_path):
    write_test_video(tmp_path / 'v.mp4', n=75, fps=25)       # 3 s; the 2.7 s window is 68 frames
    ds = VideoClipDataset([('v.mp4', 0)], tmp_path, num_frames=8, size=32)
    for _ in range(5):
        got = frames_of(ds[0].video)
        want = np.rint(np.linspace(got[0], got[0] + 67, 8)).astype(int).tolist()
        assert got == want and 0 <= got[0] <= 75 - 68


def test_test_clips_cover_the_video_from_first_to_last_frame(tmp_path):
    write_test_video(tmp_path / 'v.mp4', n=80, fps=20)        # 2.7 s at 20 fps: 54-frame windows
    views = VideoClipDataset([('v.mp4', 0)], tmp_path, num_frames=4, size=32, train=False)[0].video
    assert views.shape == (6, 3, 4, 32, 32)
    assert frames_of(views[0]) == frames_of(views[2]) == [0, 18, 35, 53]
    assert frames_of(views[3]) == frames_of(views[5]) == [26, 44, 61, 79]


def test_three_crops_run_along_the_long_side(tmp_path):
    f = np.repeat(np.linspace(0, 255, 160).astype(np.uint8)[None, None, :, None], 3, 3)
    write_test_video(tmp_path / 'g.mp4', frames=np.repeat(np.repeat(f, 90, 1), 20, 0))
    views = VideoClipDataset([('g.mp4', 0)], tmp_path, num_frames=2, size=32, train=False, clips=1)[0].video
    means = [v.mean().item() for v in views]
    assert means[0] < means[1] < means[2]


def test_short_video_repeats_its_last_frame(tmp_path):
    write_frame_folder(tmp_path / 'short', n=5)
    got = frames_of(VideoClipDataset([('short', 0)], tmp_path, num_frames=8, size=16)[0].video)
    assert got[0] == 0 and got[-1] == 4 and got == sorted(got)


def test_frame_folder_is_read_at_frames_fps(tmp_path):
    write_frame_folder(tmp_path / 'f', n=60)
    views = VideoClipDataset([('f', 0)], tmp_path, num_frames=2, size=16, train=False, clips=2, crops=1,
                             clip_seconds=1.0, frames_fps=10)[0].video
    assert frames_of(views[0]) == [0, 9] and frames_of(views[1]) == [50, 59]


def test_repeat_gives_differently_cropped_views_of_one_window(tmp_path):
    write_test_video(tmp_path / 'v.mp4', n=40, frames=np.random.default_rng(0).integers(0, 255, (40, 64, 96, 3), dtype=np.uint8))
    x = VideoClipDataset([('v.mp4', 0)], tmp_path, num_frames=4, size=32, repeat=4)[0].video
    assert x.shape == (4, 3, 4, 32, 32) and not torch.allclose(x[0], x[1])


def test_rand_augment_and_erasing_are_the_same_across_frames(tmp_path):
    texture = np.random.default_rng(0).integers(0, 255, (1, 48, 64, 3), dtype=np.uint8)
    write_frame_folder(tmp_path / 'still', frames=np.repeat(texture, 12, 0), ext='png')   # lossless, static
    def draw(**kw):
        random.seed(3); torch.manual_seed(3)
        return VideoClipDataset([('still', 0)], tmp_path, num_frames=6, size=32, **kw)[0].video
    plain, erased, augmented = draw(), draw(erase_p=1.0), draw(rand_aug=True)
    box = (erased != plain).any(0)                                   # [T, H, W]
    assert box.any() and (box == box[0]).all()                       # one box through every frame
    assert not torch.equal(augmented, plain)
    assert all(torch.equal(augmented[:, t], augmented[:, 0]) for t in range(6))   # same ops on every frame


def test_a_hung_decode_is_cut_off_and_counted(tmp_path, monkeypatch):
    write_test_video(tmp_path / 'ok.mp4', n=20)
    real = data.open_video
    def slow(path, *a, **k):
        if 'hang' in str(path): threading.Event().wait()     # never returns, holding no shared lock
        return real(path, *a, **k)
    monkeypatch.setattr(data, 'open_video', slow)
    (tmp_path / 'hang.mp4').write_bytes(b'x' * 10)
    ds = VideoClipDataset([('ok.mp4', 0), ('hang.mp4', 1)], tmp_path, num_frames=4, size=16, train=False, decode_timeout=0.5)
    batches = list(torch.utils.data.DataLoader(ds, batch_size=2, collate_fn=collate))
    assert batches[0].index.tolist() == [0]
    assert 'gave up' in ds.failures()['hang.mp4']


def test_training_never_sees_a_broken_sample(tmp_path):
    make_dataset(tmp_path, per_class=2)
    write_garbage(tmp_path / 'junk.mp4', 3000); write_garbage(tmp_path / 'empty.mp4')
    truncate_file(write_test_video(tmp_path / 'cut.mkv', n=40), 0.02)
    rows = read_split(tmp_path / 'split.csv') + [('junk.mp4', 0), ('empty.mp4', 1), ('cut.mkv', 2)]
    ds = VideoClipDataset(rows, tmp_path, num_frames=4, size=16)
    bad = {i for i, (r, _) in enumerate(rows) if r in ('junk.mp4', 'empty.mp4', 'cut.mkv')}
    seen = [i for b in torch.utils.data.DataLoader(ds, batch_size=3, num_workers=2, collate_fn=collate)
            for i in b.index.tolist()]
    assert len(seen) == len(rows) and not bad & set(seen)
    assert set(ds.report_failures()) == {'junk.mp4', 'empty.mp4', 'cut.mkv'}


def make_checked_dataset(root):
    train = make_dataset(root / 'train', per_class=2).rename(root / 'train.csv')
    val = make_dataset(root / 'val', per_class=1, seed=1).rename(root / 'val.csv')
    for f, sub in ((train, 'train'), (val, 'val')):
        f.write_text(''.join(f'{sub}/{l}\n' for l in f.read_text().splitlines()))
    return save_card(root / 'toy.md', {'name': 'toy', 'num_classes': 3, 'splits': {'train': 'train.csv', 'val': 'val.csv'},
                                       'counts': {'train': 6, 'val': 3}})


def test_data_check_passes_then_fails_clearly(tmp_path, capsys):
    card = make_checked_dataset(tmp_path)
    assert main(['data', 'check', str(card), str(tmp_path)]) == 0
    assert 'OK' in capsys.readouterr().out
    (tmp_path / 'train/left/left_000.mp4').unlink()
    write_garbage(tmp_path / 'val/up/up_000.mp4', 100)
    with open(tmp_path / 'val.csv', 'a') as f:
        f.write('train/right/right_000.mp4;7\n')
    assert main(['data', 'check', str(card), str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert 'missing' in out and 'left_000.mp4' in out
    assert 'unreadable val/up/up_000.mp4' in out
    assert 'labels [7] outside 0..2' in out and 'val: 4 rows' in out and 'in both train and val' in out


def test_data_check_names_a_missing_train_list(tmp_path, capsys):
    assert main(['data', 'check', 'kinetics150', str(tmp_path), '--no-decode']) == 1
    out = capsys.readouterr().out
    assert 'no train split list' in out and 'missing' in out


def test_data_scan_lists_broken_files(tmp_path, capsys):
    split = make_dataset(tmp_path, per_class=2)
    truncate_file(tmp_path / 'up/up_001.mp4', 0.5)
    assert main(['data', 'scan', str(split), str(tmp_path)]) == 1
    assert 'UNREADABLE up/up_001.mp4' in capsys.readouterr().out


def test_bad_split_line_is_named(tmp_path, capsys):
    (tmp_path / 's.csv').write_text('a.mp4;0\n\nb.mp4\n')
    assert main(['data', 'scan', str(tmp_path / 's.csv'), str(tmp_path)]) == 2
    assert 's.csv, line 3' in capsys.readouterr().err


def test_folder_split_uses_given_or_sorted_classes(tmp_path):
    make_dataset(tmp_path, classes=('b', 'a'), per_class=1)
    assert read_split(tmp_path) == [('a/a_000.mp4', 0), ('b/b_000.mp4', 1)]
    (tmp_path / 'classes.txt').write_text('b\na\n')
    assert read_split(tmp_path, tmp_path / 'classes.txt') == [('b/b_000.mp4', 0), ('a/a_000.mp4', 1)]


def test_a_validation_card_in_another_folder_reads_its_own_videos(tmp_path):
    "The ceiling validates on the downstream card: same file names, other folder; its rows are its own files, held out."
    from ppma.sources import load_sources, validation_sources
    for name in ('a', 'b'):
        for i in range(2):
            write_test_video(tmp_path / name / 'videos' / f'v{i}.mp4', n=4, h=16, w=16)
        for split in ('train', 'val'):
            (tmp_path / name / f'{split}.csv').write_text('videos/v0.mp4;0\nvideos/v1.mp4;1\n')
        save_card(tmp_path / name / 'card.md', {'name': name, 'num_classes': 2,
                                                'splits': {'train': 'train.csv', 'val': 'val.csv'}})
    train = load_sources(str(tmp_path / 'a' / 'card.md'))
    (v,) = validation_sources(str(tmp_path / 'a' / 'card.md'), str(tmp_path / 'b' / 'card.md'), train)
    assert v.root == tmp_path / 'b'
    with pytest.raises(ValueError, match='also training rows'):                    # the same files are still refused
        validation_sources(str(tmp_path / 'a' / 'card.md'), str(tmp_path / 'a' / 'card.md'), train)
