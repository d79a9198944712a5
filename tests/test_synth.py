"Synthetic videos: determinism, lists, decoding, visibility of every class, clear errors."
import numpy as np
import pytest

from ppma.cli import main
from ppma.data import open_video, read_split
from ppma.cards import load_card
from ppma.bodies import ACTIONS
from ppma.synth import STYLES, make_synth, render_scene, sample_scene


def frames(root, rel, decoder='decord'):
    v = open_video(root / rel, decoder)
    return v.get(list(range(v.num_frames)))


def test_same_seed_same_frames_other_seed_other_videos(tmp_path):
    for d, seed in (('a', 0), ('b', 0), ('c', 1)):
        make_synth(tmp_path / d, classes='waving_one_hand', per_class=1, val_fraction=0, size=48, frames=8, seed=seed, progress=False)
    rel = 'videos/waving_one_hand/waving_one_hand_0000.mp4'
    assert (tmp_path / 'a' / rel).read_bytes() == (tmp_path / 'b' / rel).read_bytes()
    assert np.array_equal(frames(tmp_path / 'a', rel), frames(tmp_path / 'b', rel))
    assert not np.array_equal(frames(tmp_path / 'a', rel), frames(tmp_path / 'c', rel))


def test_lists_counts_labels_and_both_decoders(tmp_path):
    assert main(['synth', str(tmp_path), '--classes', 'kicking,bowing,clapping', '--per-class', '5', '--val-fraction', '0.4',
                 '--size', '64', '--frames', '12', '--fps', '12', '--style', 'stick']) == 0
    train, val = read_split(tmp_path / 'train.csv'), read_split(tmp_path / 'val.csv')
    assert len(train) == 9 and len(val) == 6
    assert [l for _, l in train] == [0, 0, 0, 1, 1, 1, 2, 2, 2] and [l for _, l in val] == [0, 0, 1, 1, 2, 2]
    assert all(r.startswith(f'videos/{c}/') for (r, l) in train + val for c in [['kicking', 'bowing', 'clapping'][l]])
    assert (tmp_path / 'classes.txt').read_text().split() == ['kicking', 'bowing', 'clapping']
    card = load_card(tmp_path / 'card.md')
    assert card['real_humans'] is False and card['counts'] == {'train': 9, 'val': 6} and card['synth']['style'] == 'stick'
    assert card['label_space'].startswith('synth-')
    rel = train[0][0]
    a, b = frames(tmp_path, rel), frames(tmp_path, rel, 'pyav')
    assert a.shape == (12, 64, 64, 3) and np.abs(a.astype(float) - b).mean() < 2
    assert open_video(tmp_path / rel).fps == 12


@pytest.mark.parametrize('action', list(ACTIONS))
def test_every_class_shows_a_moving_body_inside_the_frame(action):
    for seed in range(12):
        rng = np.random.default_rng([7, seed])
        style = STYLES[seed % len(STYLES)]
        scene = sample_scene(action, rng, n=16, fps=15)
        _, mask = render_scene(scene, rng, size=64, style=style, with_mask=True)
        on = mask > 0
        assert on.reshape(16, -1).mean(1).min() > 0.01, (action, seed)                 # visible in every frame
        edge = on[:, 0].any() or on[:, -1].any() or on[:, :, 0].any() or on[:, :, -1].any()
        assert not edge, (action, seed)                                                 # never cut by the frame
        assert (on[1:] != on[:-1]).mean() > 0.001, (action, seed)                       # it moves


def test_bad_arguments_are_named(tmp_path, capsys):
    for args, msg in [(['--classes', ''], 'at least one class'), (['--classes', 'flying'], "unknown ['flying']"),
                      (['--size', '-4'], 'size=-4'), (['--per-class', '0'], 'per_class=0'), (['--style', 'cartoon'], "style 'cartoon'"),
                      (['--val-fraction', '1'], 'val_fraction=1'), (['--frames', '0'], 'frames=0')]:
        assert main(['synth', str(tmp_path), *args]) == 2
        assert msg in capsys.readouterr().err


def test_backgrounds_from_videos_occluders_and_a_second_person(tmp_path):
    from ppma.testing import write_test_video
    write_test_video(tmp_path / 'bg' / 'street.mp4', n=30, h=72, w=96, frames=np.full((30, 72, 96, 3), (10, 200, 30), np.uint8))
    make_synth(tmp_path / 'out', classes='clapping', per_class=2, val_fraction=0, size=48, frames=8, backgrounds=tmp_path / 'bg',
               occluders=1.0, second_person=1.0, progress=False)
    f = frames(tmp_path / 'out', 'videos/clapping/clapping_0000.mp4')
    green = (np.abs(f.astype(int) - (10, 200, 30)).sum(-1) < 40).mean()
    assert 0.3 < green < 0.97                          # the given video shows behind the people and the pole
    assert load_card(tmp_path / 'out' / 'card.md')['synth']['second_person'] == 1.0
