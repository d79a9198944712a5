"Human removal on generated videos (exact checks) and on vtest.avi (real people)."
import json, os, signal, subprocess, sys, time
from pathlib import Path

import numpy as np
import pytest

from ppma.cli import main
from ppma.data import open_video
from ppma.background import fill_still
from ppma.human_removal import HumanRemover, audit, audit_detector, fetch_sample
from ppma.remove_humans import read_video, remove_humans
from ppma.testing import write_garbage, write_test_video


def scene_with_people(n=24, size=96, seed=0):
    "A static procedural background with two painted people walking across it, and their true masks."
    rng = np.random.default_rng(seed)
    import cv2
    noise = rng.integers(40, 220, (size, size, 3)).astype(np.uint8)
    bg = cv2.GaussianBlur(noise, (0, 0), 3)[None].repeat(n, 0)          # a smooth, natural-looking texture
    video, truth = bg.copy(), np.zeros((n, size, size), bool)
    for t in range(n):
        for x0, y0, c in ((2 + 3 * t, 20, (20, 20, 30)), (80 - 2 * t, 40, (200, 40, 40))):
            y, x = np.ogrid[:size, :size]
            body = ((x - x0 - 6) / 6.0) ** 2 + ((y - y0 - 15) / 15.0) ** 2 <= 1
            head = (x - x0 - 6) ** 2 + (y - y0 + 4) ** 2 <= 16
            video[t][body | head] = c; truth[t] |= body | head
    return video, truth, bg


def boxes_only(frame, boxes):
    "A segmenter that keeps the whole box (to test tracking and filling apart from segmentation)."
    out = np.zeros(frame.shape[:2], bool)
    for x0, y0, x1, y1 in boxes: out[y0:y1, x0:x1] = True
    return out


class TruthBoxes:
    "A detector returning the true boxes (to test segmentation and filling apart from detection)."
    def __init__(self, video, truth): self.video, self.truth = video, truth

    def __call__(self, frame):
        import cv2
        t = int(np.argmin([np.abs(frame.astype(int) - f).sum() for f in self.video]))
        n, _, stats, _ = cv2.connectedComponentsWithStats(self.truth[t].astype(np.uint8))
        return np.array([(x, y, x + w, y + h) for x, y, w, h, _ in stats[1:]])


def test_masks_cover_painted_people_and_the_fill_removes_them():
    video, truth, bg = scene_with_people()
    det = TruthBoxes(video, truth)
    clean, masks, info = HumanRemover(det, boxes_only, detect_every=1, hold=0)(video)
    assert masks[truth].mean() > 0.98                          # the painted people are covered
    assert masks.mean() < 4 * truth.mean()                     # without masking everything
    err = np.abs(clean.astype(int) - bg)[truth].mean()
    assert err < 3, err                                        # and the background comes back where they were
    assert set(info['timings']) == {'camera', 'detect', 'segment', 'inpaint'}
    assert info['camera']['moving'] is False and info['camera']['decided_by'] == 'motion'   # a still camera, measured


def test_the_still_fill_is_exact_on_a_static_background():
    video, truth, bg = scene_with_people(seed=1)
    assert np.array_equal(fill_still(video, truth, window=12), bg)


def test_the_camera_is_decided_per_video_and_can_be_overridden():
    import cv2
    rng = np.random.default_rng(3)
    wide = cv2.normalize(cv2.GaussianBlur(rng.integers(0, 255, (120, 200, 3), dtype=np.uint8), (0, 0), 1.5), None, 0, 255, cv2.NORM_MINMAX)
    video = wide[None, :96, :96].repeat(30, 0)                                 # a textured place, filmed still
    pan = np.stack([wide[:96, 2 * t:2 * t + 96] for t in range(30)])          # and panned 2 px a frame
    none = lambda f: np.zeros((0, 4), int)
    assert HumanRemover(none, boxes_only)(video)[2]['camera']['moving'] is False
    cam = HumanRemover(none, boxes_only)(pan)[2]['camera']
    assert cam['moving'] is True and cam['shift_px'] > 5 and cam['decided_by'] == 'motion', cam
    assert HumanRemover(none, boxes_only, camera='static')(pan)[2]['camera'] == {'moving': False, 'decided_by': 'override', 'shots': 1}


def test_outputs_keep_frames_fps_and_size_and_resume(tmp_path):
    for i in range(2): write_test_video(tmp_path / 'in' / f'v{i}.mp4', n=20, h=64, w=80, fps=12)
    write_garbage(tmp_path / 'in' / 'broken.mp4', 2000)
    recs = remove_humans(tmp_path / 'in', tmp_path / 'out', workers=2, progress=False, save_masks=True)
    ok = {r['path']: r for r in recs if r['status'] == 'ok'}
    assert set(ok) == {'v0.mp4', 'v1.mp4'}
    assert next(r for r in recs if r['path'] == 'broken.mp4')['status'] == 'error'       # reported, not fatal
    v = open_video(tmp_path / 'out' / 'v0.mp4')
    assert (v.num_frames, v.fps, v.get([0]).shape[1:3]) == (20, 12, (64, 80))
    audit_dir = tmp_path / 'out-audit'                                                    # previews and masks show people:
    assert (audit_dir / 'seg' / 'v0.mp4').exists() and (audit_dir / ok['v0.mp4']['preview']).exists()   # beside, not inside
    shared = sorted(str(p.relative_to(tmp_path / 'out')) for p in (tmp_path / 'out').rglob('*') if p.is_file())
    assert shared == ['.lock', 'card.md', 'identity.json', 'manifest.jsonl', 'v0.mp4', 'v1.mp4', 'videos.csv'], shared
    assert 'moving' in ok['v0.mp4']['camera'] and 'camera' in ok['v0.mp4']['timings']
    first = (tmp_path / 'out' / 'manifest.jsonl').read_text().count('\n')
    remove_humans(tmp_path / 'in', tmp_path / 'out', workers=1, progress=False)
    lines = [json.loads(l) for l in (tmp_path / 'out' / 'manifest.jsonl').read_text().splitlines()]
    assert len(lines) == first + 1 and lines[-1]['path'] == 'broken.mp4'                  # only the failed one again
    card = (tmp_path / 'out' / 'card.md').read_text()
    assert 'privacy:' in card and 'real_humans: false' in card and str(audit_dir) in card


def test_a_killed_run_leaves_nothing_half_written_counted_as_done(tmp_path):
    for i in range(3): write_test_video(tmp_path / 'in' / f'v{i}.mp4', n=60, h=96, w=128)
    cmd = [str(Path(sys.executable).parent / 'ppma'), 'remove-humans', str(tmp_path / 'in'), str(tmp_path / 'out'), '--workers', '1']
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and not list((tmp_path / 'out').glob('.v*.tmp*')) and p.poll() is None:
        time.sleep(0.01)
    os.killpg(p.pid, signal.SIGKILL); p.wait()                            # the command and its worker processes
    manifest = tmp_path / 'out' / 'manifest.jsonl'
    done = [json.loads(l)['path'] for l in manifest.read_text().splitlines()] if manifest.exists() else []
    for f in (tmp_path / 'out').glob('v*.mp4'):
        assert open_video(f).num_frames == 60                            # a visible output is complete
    assert all((tmp_path / 'out' / d).exists() for d in done)            # and what is counted done exists
    assert main(['remove-humans', str(tmp_path / 'in'), str(tmp_path / 'out'), '--workers', '1']) == 0
    assert sorted(f.name for f in (tmp_path / 'out').glob('v*.mp4')) == ['v0.mp4', 'v1.mp4', 'v2.mp4']


@pytest.fixture(scope='module')
def vtest():
    path = fetch_sample('vtest.avi')
    if path is None: pytest.skip('vtest.avi could not be fetched (needs apt-get download opencv-doc)')
    frames, _ = read_video(path, 320)
    return frames


def test_audit_counts_people_with_and_without(vtest):
    empty = np.repeat(np.median(vtest[::20], 0).astype(np.uint8)[None], 40, 0)      # the scene with nobody in it
    a = audit(audit_detector(), vtest[100:140], empty, every=10)
    assert a['detections_before'] >= 8 and a['detections_after'] == 0 and a['removed_fraction'] == 1.0


def test_vtest_people_are_mostly_removed(vtest):
    clip = vtest[200:260]
    clean, masks, _ = HumanRemover()(clip)
    a = audit(audit_detector(), clip, clean, every=6)
    assert a['detections_before'] >= 20 and a['detections_after'] <= 0.2 * a['detections_before'], a


def test_an_instance_segmenter_gives_the_masks_directly():
    video, truth, bg = scene_with_people(seed=2)
    class Segmenter:                                    # stands in for MaskRCNN (same interface, no weights here)
        def detect_and_segment(self, frame):
            t = int(np.argmin([np.abs(frame.astype(int) - f).sum() for f in video]))
            return np.zeros((1, 4)), truth[t][None]
        __call__ = lambda self, f: self.detect_and_segment(f)[0]
    clean, masks, _ = HumanRemover(Segmenter())(video)
    assert masks[truth].all() and np.abs(clean.astype(int) - bg)[truth].mean() < 1


def test_real_people_with_known_masks_over_a_moving_camera_are_removed(vtest):
    "Ground truth: vtest's people (cut out by plate subtraction) over a real photo filmed by a panning, zooming camera."
    import cv2
    from ppma.miniature import vtest_plate
    from ppma.removal_truth import camera_path, composite, people_masks, removal_scores
    photo = fetch_sample('leuvenA.jpg')
    if photo is None: pytest.skip('leuvenA.jpg could not be fetched (needs apt-get download opencv-doc)')
    frames, _ = read_video(fetch_sample('vtest.avi'), 640)
    truth = people_masks(frames[550:590], vtest_plate(frames))
    background, _ = camera_path(cv2.cvtColor(cv2.imread(str(photo)), cv2.COLOR_BGR2RGB), 40, (640, 480), pan=0.25, zoom=1.1, turn=2.0)
    video, truth = composite(frames[550:590], truth, background, down=150)
    clean, masks, info = HumanRemover()(video)
    s = removal_scores(video, truth, clean=clean, masks=masks, reencoded=video)
    assert info['camera']['moving'], info['camera']
    assert truth.sum() > 100_000 and s['removed'] >= 0.9 and s['area_ratio'] <= 1.5, s
    err = lambda a, b: np.abs(a.astype(int) - b).sum(-1)
    gone = err(clean, background) < err(clean, video)                       # the output looks like the place, not the person
    assert gone[truth].mean() >= 0.85, gone[truth].mean()


@pytest.mark.parametrize('flag, moving', [('--static-camera', False), ('--moving-camera', True)])
def test_the_camera_flags_override_the_decision_and_the_manifest_says_so(tmp_path, flag, moving):
    write_test_video(tmp_path / 'in' / 'v.mp4', n=12, h=64, w=80)
    assert main(['remove-humans', str(tmp_path / 'in'), str(tmp_path / 'out'), '--workers', '1', '--no-audit', flag]) == 0
    rec = json.loads((tmp_path / 'out' / 'manifest.jsonl').read_text().splitlines()[-1])
    assert rec['camera'] == {'moving': moving, 'decided_by': 'override', 'shots': 1}
    with pytest.raises(SystemExit):                                  # not both at once
        main(['remove-humans', str(tmp_path / 'in'), str(tmp_path / 'o2'), '--static-camera', '--moving-camera'])
