"""Human removal, measured: throughput per path against the previous pipeline, ground truth on composites, and
the independent audit on real footage with its recall beside every residual.

    .venv/bin/python benchmarks/human_removal.py [--frames 60] [--old a4a956c] [--skip-audit]

1. Throughput at 640x480 on one core (OpenCV and onnxruntime single-threaded): the still-camera path on vtest.avi
   (real pedestrians, still camera), the moving path on a composite filmed by a moving camera, and the previous
   pipeline (`ppma/human_removal.py` at commit `--old`, read from git) on the same vtest frames, in this run.
   Frames are decoded before timing; the encode of the output is timed. Speed-ups are ratios within this run.
2. Ground truth: vtest's people, cut out by subtraction from the still camera's empty plate (no model), pasted
   over real photographs filmed by a virtual moving camera (pan, zoom, turn) and over moving-camera shots of
   bikes.mp4 that show nobody: person pixels removed, removal-mask area against the true mask, and PSNR away from
   the people (outside the true mask dilated by 10 px) against a plain re-encode of the composite.
3. The audit (OpenCV HOG, Daimler model: it made none of the masks) on real footage: vtest.avi (still camera)
   and vtest.avi filmed through a virtual moving camera (a panning, zooming 640x480 window over the 768x576
   original: real people, moving view). A detection counts as a person when at least 20% of its box is covered
   by the people known in that frame (the plate subtraction); the audit's recall is the share of the people
   counted by eye in eight frames that it finds. Residual = person detections after / before, every 5th frame.
"""
import argparse, importlib.util, json, subprocess, sys, tempfile, time
from pathlib import Path

import cv2
import numpy as np

from ppma.background import camera_motion
from ppma.core import write_video
from ppma.data import open_video
from ppma.human_removal import HumanRemover, SSDLite, audit_detector, fetch_sample
from ppma.miniature import vtest_plate
from ppma.removal_truth import camera_path, composite, people_masks, removal_scores
from ppma.remove_humans import read_video, save_preview

ROOT = Path(__file__).resolve().parents[1]
COUNTS = {0: 3, 100: 7, 200: 7, 300: 6, 400: 3, 500: 4, 600: 6, 700: 8}     # vtest people counted by eye, 2026-11-28
VIEW_COUNTS = {0: 2, 100: 6, 200: 3, 300: 5, 400: 2, 500: 4, 600: 4, 700: 6}  # the same frames of the moving view, by eye
PHOTOS = ('building.jpg', 'leuvenA.jpg', 'leuvenB.jpg', 'aero3.jpg')           # OpenCV's photos of places, nobody in them
BIKES_EMPTY = ((0, 28), (58, 76), (140, 186))                                   # bikes.mp4 shots that show nobody (by eye)
DOWN = 150           # vtest's people walk in the upper half of its view; the photos' ground lies lower


def old_module(commit):
    "The previous `ppma.human_removal`, read from git at `commit`."
    src = subprocess.run(['git', 'show', f'{commit}:ppma/human_removal.py'], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    path = Path(tempfile.mkdtemp()) / 'old_human_removal.py'
    path.write_text(src)
    spec = importlib.util.spec_from_file_location('ppma.old_human_removal', path)
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    return mod


def timed(remove, frames, out):
    "Frames/s of `remove` on `frames` with the encode, and ms per frame per stage."
    t0 = time.perf_counter()
    clean, masks, info = remove(frames)
    timings = dict(info['timings'] if 'timings' in info else info)
    t1 = time.perf_counter()
    write_video(out, clean, fps=10)
    timings['encode'] = time.perf_counter() - t1
    total = time.perf_counter() - t0
    return len(frames) / total, {k: round(v / len(frames) * 1000) for k, v in timings.items()}, clean, masks, info


def throughput(vtest, moving, old, out):
    rows = {}
    for name, remove, frames in (('static path', HumanRemover(), vtest), ('moving path', HumanRemover(), moving),
                                 ('previous pipeline (static)', old.HumanRemover(), vtest)):
        fps, ms, clean, masks, info = timed(remove, frames, out / f'throughput_{name.split()[0]}.mp4')
        cam = info.get('camera', {}).get('moving') if isinstance(info, dict) else None
        rows[name] = fps
        print(f'  {name:28s} {fps:6.2f} frames/s/core   ms/frame: {ms}' + ('' if cam is None else f'   camera decided: {"moving" if cam else "static"}'))
    print(f'  speed-up over the previous pipeline: static {rows["static path"] / rows["previous pipeline (static)"]:.1f}x, '
          f'moving {rows["moving path"] / rows["previous pipeline (static)"]:.1f}x')
    return rows


def reencode(frames, path):
    write_video(path, frames, fps=10)
    v = open_video(path)
    return v.get(list(range(v.num_frames)))


def score(video, truth, out, name):
    "Run the default remover on a composite and score it against its truth (both through the same encoder)."
    clean, masks, info = HumanRemover()(video)
    s = removal_scores(video, truth, clean=clean, masks=masks, encoded=reencode(clean, out / f'{name}_clean.mp4'),
                       reencoded=reencode(video, out / f'{name}_plain.mp4'))
    save_preview(out / f'{name}_preview.png', video, masks, clean, k=3)
    return {'clip': name, 'camera': 'moving' if info['camera']['moving'] else 'static', **s}


def composites(frames, plate, truth, out, n=60):
    "Scores on composites of vtest's people over moving-camera footage, and over vtest's own plate (still)."
    h, w = frames.shape[1:3]
    rows = [score(*composite(frames[300:300 + n], truth[300:300 + n], plate[None].repeat(n, 0)), out, 'still_plate')]
    for k, photo in enumerate(PHOTOS):
        img = cv2.cvtColor(cv2.imread(str(fetch_sample(photo))), cv2.COLOR_BGR2RGB)
        bg, _ = camera_path(img, n, (w, h), pan=0.25, zoom=1.1, turn=2.0)
        s = 100 + 150 * k
        rows.append(score(*composite(frames[s:s + n], truth[s:s + n], bg, down=DOWN), out, f'pan_{Path(photo).stem}'))
    bikes, _ = read_video(fetch_sample('bikes.mp4'), 640)
    for k, (a, b) in enumerate(BIKES_EMPTY):                 # 640x272: vtest's band where people walk, rows 100-372
        s = 150 + 200 * k
        people, m = frames[s:s + b - a, 100:100 + bikes.shape[1]], truth[s:s + b - a, 100:100 + bikes.shape[1]]
        rows.append(score(*composite(people, m, bikes[a:b]), out, f'bikes_{a}_{b}'))
    return rows


def on_people(dets, people, share=0.2):
    "How many detections are on a known person: at least `share` of the box covered by the people's mask."
    covered = lambda box: people[max(0, box[1]):box[3], max(0, box[0]):box[2]]
    return sum(1 for b in dets if covered(b).size and covered(b).mean() >= share)


def person_detections(detector, videos, truth, every=5):
    "For each video, the detections on the people known in `truth`, every `every`-th frame."
    return [sum(on_people(detector(v[t]), truth[t]) for t in range(0, len(truth), every)) for v in videos]


def recall(detector, frames, truth, counts):
    "Share of the people counted by eye in `counts` frames that the detector finds (detections on known people, at most the count)."
    return sum(min(on_people(detector(frames[t]), truth[t]), n) for t, n in counts.items()) / sum(counts.values())


def moving_view(full, size=(640, 480)):
    "vtest.avi (768x576) through a virtual camera (a window that pans, zooms and returns): frames, their people, the empty view."
    H, W = full.shape[1:3]
    plate = vtest_plate(full)
    truth = people_masks(full, plate)
    frames, masks, empty = [], [], []
    for t in range(len(full)):
        p = 0.5 - 0.5 * np.cos(2 * np.pi * t / 200)           # out and back every 200 frames (20 s)
        w, h = int(W * 0.8 * (1 - 0.15 * p)), int(H * 0.8 * (1 - 0.15 * p))     # zooming in by 15% at the far end
        x, y = int((W - w) * p), int((H - h) * (1 - p) * 0.5)
        view = lambda img, how=cv2.INTER_AREA: cv2.resize(img[y:y + h, x:x + w], size, interpolation=how)
        frames.append(view(full[t])); empty.append(view(plate))
        masks.append(view(truth[t].astype(np.uint8), cv2.INTER_NEAREST) > 0)
    return np.stack(frames), np.stack(masks), np.stack(empty)


def audit_real(frames, truth, empty, counts, name, out, remover=None):
    "The audit of one real video: person detections before and after (net of what it sees on the empty view), its recall."
    t0 = time.perf_counter()
    clean, masks, info = (remover or HumanRemover())(frames)
    secs = time.perf_counter() - t0
    save_preview(out / f'{name}_preview.png', frames, masks, clean, k=4)
    write_video(out / f'{name}_nohuman.mp4', clean, fps=10)
    rec = recall(audit_detector(), frames, truth, counts) if counts else None
    (nb, na, ne), ssd = person_detections(audit_detector(), (frames, clean, empty), truth), person_detections(SSDLite(), (frames, clean), truth)
    left = max(0, na - ne) / max(1, nb)
    cam = info.get('camera', {'moving': False})
    print(f'  {name}: camera {"moving" if cam["moving"] else "static"} ({cam.get("decided_by", "fixed")}); audit (HOG Daimler'
          + (f', recall {rec:.2f} on the frames counted by eye' if rec is not None else '') + f'): {nb} person detections before, '
          f'{na} after, {ne} on the empty view at the same places: {left:.1%} left; the remover\'s SSDLite (not independent): '
          f'{ssd[0]} before, {ssd[1]} after; {len(frames) / secs:.1f} frames/s')
    return {'video': name, 'camera': 'moving' if cam['moving'] else 'static', 'audit_recall': rec and round(rec, 3), 'before': nb,
            'after': na, 'empty': ne, 'left': round(left, 4), 'ssdlite_before': ssd[0], 'ssdlite_after': ssd[1]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--frames', type=int, default=60, help='frames per throughput clip and per composite')
    ap.add_argument('--old', default='a4a956c', help='the commit of the previous pipeline')
    ap.add_argument('--skip-audit', action='store_true', help='leave out the real-footage audit (the longest part)')
    ap.add_argument('--out', default='benchmarks/out/human_removal')
    a = ap.parse_args()
    cv2.setNumThreads(1)
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    path = fetch_sample('vtest.avi')
    if path is None: raise SystemExit('vtest.avi could not be fetched (apt-get download opencv-doc)')
    frames, _ = read_video(path, 640)
    plate = vtest_plate(frames)
    truth = people_masks(frames, plate)
    n = a.frames
    print(f'1. throughput at 640x480, one core, {n} frames each')
    img = cv2.cvtColor(cv2.imread(str(fetch_sample(PHOTOS[1]))), cv2.COLOR_BGR2RGB)
    moving, _ = composite(frames[300:300 + n], truth[300:300 + n], camera_path(img, n, (640, 480))[0])
    speed = throughput(frames[300:300 + n], moving, old_module(a.old), out)
    print('2. ground truth: vtest people (cut out by plate subtraction) over moving-camera footage')
    rows = composites(frames, plate, truth, out, n)
    for r in rows: print('  ', r)
    moving_rows = [r for r in rows if r['camera'] == 'moving']
    tot = sum(r['person_pixels'] for r in moving_rows)
    print(f'  moving composites: {sum(r["removed"] * r["person_pixels"] for r in moving_rows) / tot:.1%} of {tot} person pixels '
          f'removed; removal mask {sum(r["area_ratio"] * r["person_pixels"] for r in moving_rows) / tot:.2f}x the true area '
          f'({min(r["area_ratio"] for r in moving_rows)}-{max(r["area_ratio"] for r in moving_rows)} per clip); away from the '
          f'people the remover\'s PSNR minus a plain re-encode\'s: {min(r["psnr_away"] - r["psnr_away_reencode"] for r in moving_rows):+.1f} dB '
          f'at worst (after our own encode: {min(r["psnr_away_encoded"] - r["psnr_away_reencode"] for r in moving_rows):+.2f} dB)')
    result = {'throughput': speed, 'composites': rows}
    if not a.skip_audit:
        print('3. the audit on real footage: vtest.avi (the previous pipeline beside it on the first 300 frames), and a moving view of it')
        empty = plate[None].repeat(len(frames), 0)
        result['audit'] = [audit_real(frames, truth, empty, COUNTS, 'vtest_static', out)]
        k = 300
        result['audit'] += [audit_real(frames[:k], truth[:k], empty[:k], None, f'vtest_first{k}_{who}', out, remover)
                            for who, remover in (('new', HumanRemover()), ('previous', old_module(a.old).HumanRemover()))]
        del frames, truth, empty
        view, view_truth, view_empty = moving_view(read_video(path)[0])
        result['audit'].append(audit_real(view, view_truth, view_empty, VIEW_COUNTS, 'vtest_moving_view', out))
    (out / 'results.json').write_text(json.dumps(result, indent=1))


if __name__ == '__main__':
    main()
