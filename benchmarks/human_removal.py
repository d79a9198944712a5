"""Human removal on vtest.avi: the audit (people detected before and after), the audit detector's recall on
frames counted by eye, and the throughput of the default pipeline per stage.

    .venv/bin/python benchmarks/human_removal.py [--max-side 320] [--throughput-frames 60]

The people in eight frames of vtest.avi were counted by eye (2026-11-28, from 640x480 renderings):
frame 0: 3, 100: 7, 200: 7, 300: 6, 400: 3, 500: 4, 600: 6, 700: 8. Recall is count-based:
sum over frames of min(detections, people) / people (an upper bound when a detector also fires on background).
Throughput is measured on one core (OpenCV single-threaded) at 640x480 on `--throughput-frames` frames.
"""
import argparse, json, time
from pathlib import Path

import cv2

from ppma.core import write_video
from ppma.human_removal import HOGDetector, HumanRemover, audit, audit_detector, count_recall, fetch_sample
from ppma.remove_humans import read_video, save_preview

COUNTS = {0: 3, 100: 7, 200: 7, 300: 6, 400: 3, 500: 4, 600: 6, 700: 8}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--max-side', type=int, default=320); ap.add_argument('--throughput-frames', type=int, default=60)
    ap.add_argument('--out', default='benchmarks/out/human_removal')
    a = ap.parse_args()
    cv2.setNumThreads(1)
    path = fetch_sample('vtest.avi')
    if path is None: raise SystemExit('vtest.avi could not be fetched (apt-get download opencv-doc)')
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)

    frames, fps = read_video(path, a.max_side)
    rec, found = count_recall(audit_detector(), frames, COUNTS)
    mrec, _ = count_recall(HOGDetector(), frames, COUNTS)
    print(f'vtest.avi at {frames.shape[2]}x{frames.shape[1]}, {len(frames)} frames: audit detector (HOG Daimler) count recall '
          f'{rec:.2f} ({sum(min(found[t], n) for t, n in COUNTS.items())} of {sum(COUNTS.values())} people counted by eye); '
          f'mask detector (HOG INRIA) {mrec:.2f}')
    t0 = time.perf_counter()
    clean, masks, timings = HumanRemover()(frames)
    secs = time.perf_counter() - t0
    write_video(out / 'vtest_nohuman.mp4', clean, fps=fps)
    save_preview(out / 'vtest_preview.png', frames, masks, clean, k=4)
    a_ = audit(audit_detector(), frames, clean, every=5)
    print(f'audit every 5th frame: {a_["detections_before"]} detections before, {a_["detections_after"]} after '
          f'({a_["detections_after"] / max(1, a_["detections_before"]):.1%} left, removed fraction {a_["removed_fraction"]}); '
          f'frames with a detection left: {len(a_["frames_with_people_after"])} of {a_["frames_audited"]}; '
          f'masked {masks.mean():.1%} of pixels; {secs:.0f} s for the video')
    json.dump({'recall': rec, 'audit': a_, 'seconds': secs}, open(out / 'vtest_audit.json', 'w'), indent=1)

    full, _ = read_video(path, 640)
    sub = full[300:300 + a.throughput_frames]
    t0 = time.perf_counter()
    clean, masks, timings = HumanRemover()(sub)
    t1 = time.perf_counter()
    write_video(out / 'vtest_640_clip.mp4', clean, fps=fps)
    timings['encode'] = time.perf_counter() - t1
    total = sum(timings.values())
    print(f'throughput at {sub.shape[2]}x{sub.shape[1]}, one core: {len(sub) / total:.2f} frames/s; '
          + ', '.join(f'{k} {v / len(sub) * 1000:.0f} ms/frame ({v / total:.0%})' for k, v in timings.items()))


if __name__ == '__main__':
    main()
