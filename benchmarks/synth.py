"""Synthetic videos: generation speed per core, where the time goes, and how separable the classes are.

    .venv/bin/python benchmarks/synth.py [--videos 28] [--train 40] [--test 20]

Speed: `--videos` videos of 48 frames at 112 x 112 (mannequin style, procedural background) rendered and
encoded in one process on one core, timing sampling, rendering and H.264 encoding separately. No peer runs here.

Separability: a logistic-regression classifier on the camera-projected 2-D joint trajectories (pelvis-centred,
scaled by the body's projected size; per-joint mean, spread and the magnitudes of the first temporal
frequencies, so the phase of a motion does not matter), trained on `--train` samples per class and tested on
`--test` samples per class drawn from seeds never used in training.
"""
import argparse, tempfile, time
from pathlib import Path

import numpy as np
import torch

from ppma.core import write_video
from ppma.bodies import ACTIONS, J
from ppma.synth import project, render_scene, sample_scene


def speed(n_videos, frames=48, size=112):
    torch.set_num_threads(1)
    t = {'sample': 0.0, 'render': 0.0, 'encode': 0.0}
    names = list(ACTIONS)
    with tempfile.TemporaryDirectory() as d:
        for i in range(n_videos):
            rng = np.random.default_rng([1, i])
            t0 = time.perf_counter(); scene = sample_scene(names[i % len(names)], rng, frames, 15)
            t1 = time.perf_counter(); video, _ = render_scene(scene, rng, size)
            t2 = time.perf_counter(); write_video(Path(d) / f'{i}.mp4', video, fps=15, options={'threads': '1'})
            t3 = time.perf_counter()
            t['sample'] += t1 - t0; t['render'] += t2 - t1; t['encode'] += t3 - t2
    total, n = sum(t.values()), n_videos * frames
    print(f'speed: {n / total:.0f} frames/s on one core at {size}x{size} ({n_videos} videos x {frames} frames); '
          + ', '.join(f'{k} {v / total:.0%}' for k, v in t.items()))


def features(action, seed, frames=32):
    rng = np.random.default_rng([2, seed, list(ACTIONS).index(action)])
    scene = sample_scene(action, rng, frames, 15)
    pts, _ = project(scene['people'][0][0], scene['cam'], 1.0)                 # [T, 16, 2]
    pts = pts - pts[:, J['pelvis']:J['pelvis'] + 1]
    pts = pts / (np.ptp(pts[..., 1]) + 1e-6)
    spec = np.abs(np.fft.rfft(pts - pts.mean(0), axis=0))[1:6]
    return np.concatenate([pts.mean(0).ravel(), pts.std(0).ravel(), spec.ravel()])


def separability(n_train, n_test):
    names = list(ACTIONS)
    def make(seeds):
        x = np.stack([features(a, s) for a in names for s in seeds])
        return torch.tensor(x, dtype=torch.float32), torch.arange(len(names)).repeat_interleave(len(seeds))
    xtr, ytr = make(range(n_train)); xte, yte = make(range(10_000, 10_000 + n_test))
    mu, sd = xtr.mean(0), xtr.std(0) + 1e-6
    xtr, xte = (xtr - mu) / sd, (xte - mu) / sd
    torch.manual_seed(0)
    clf = torch.nn.Linear(xtr.shape[1], len(names))
    opt = torch.optim.Adam(clf.parameters(), lr=0.01, weight_decay=1e-3)
    for _ in range(500):
        opt.zero_grad(); torch.nn.functional.cross_entropy(clf(xtr), ytr).backward(); opt.step()
    acc = (clf(xte).argmax(1) == yte).float()
    per = {n: acc[yte == i].mean().item() for i, n in enumerate(names)}
    print(f'separability: {acc.mean():.1%} held-out accuracy over {len(names)} classes (chance {1 / len(names):.1%}); '
          f'{n_train} train / {n_test} test samples per class, unseen seeds')
    print('  per class: ' + ', '.join(f'{n} {a:.0%}' for n, a in per.items()))


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--videos', type=int, default=28); ap.add_argument('--train', type=int, default=40)
    ap.add_argument('--test', type=int, default=20)
    a = ap.parse_args()
    speed(a.videos)
    separability(a.train, a.test)
