"""The miniature's ceiling: how well the encoder can learn its downstream task from abundant labels, per input variant.

    .venv/bin/python benchmarks/ceiling.py --variant base [--variant zoom2.2 ...] [--epochs 60]

Same generator, actions, plates and validation videos (seeds) as `make demo`'s downstream set; `--train`
new videos per class (seeds never used by the demo). Videos are rendered straight to arrays at `RENDER`'s
96 px and resized, as the loader reads the mp4s (no H.264 round trip), and the encoder is trained from
random init with the demo's fine-tune recipe (AdamW, warm-up then cosine, crop scale 0.8-1 and flip). Each
variant reports: the fine-tuned top-1 on the validation videos (centre clip), a linear probe (logistic
regression) on its frozen features, the same probe on a random-init encoder's features, and logistic
regression on motion energy (what the videos hold) and on mean colour (what they should not give away).
One thread per variant; run two variants side by side on two cores (`--jobs 2`).
"""
import argparse, json, time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ppma.bodies import ACTIONS
from ppma.data import MEAN, STD
from ppma.miniature import DOWNSTREAM_ACTIONS, RENDER, SCALES, clean_plates, fit_logistic, mean_colour, motion_energy
from ppma.models import VideoViT
from ppma.synth import STYLES, background_files, render_scene, sample_scene

OUT = Path(__file__).parent/'out'/'ceiling'
VARIANTS = {  # name: input size, patch, frames, people's zoom (the demo's was 1.6 when measured; 2.2 now), frame stride
    'base': dict(size=64, patch=16, frames=8, zoom=1.6, stride=4),
    'zoom2.2': dict(size=64, patch=16, frames=8, zoom=2.2, stride=4),
    'patch8': dict(size=64, patch=8, frames=8, zoom=1.6, stride=4),
    'size32_patch8': dict(size=32, patch=8, frames=8, zoom=1.6, stride=4),
    'frames16': dict(size=64, patch=16, frames=16, zoom=1.6, stride=2),
    'size48_patch12': dict(size=48, patch=12, frames=8, zoom=1.6, stride=4),
    'size32_patch8_zoom2.2': dict(size=32, patch=8, frames=8, zoom=2.2, stride=4),
    'size48_patch8_zoom2.2': dict(size=48, patch=8, frames=8, zoom=2.2, stride=4),
    'size32_patch4': dict(size=32, patch=4, frames=8, zoom=1.6, stride=4),
}


CAMERA = {'camera': 'moving'}      # over the photos: 'moving' (the demo's) or 'still' (--camera)


def render(seed, action, i, zoom, plates):
    "One downstream video as the demo seeds it (`make_synth`'s seed list), `[32, 96, 96, 3]` uint8."
    rng = np.random.default_rng([seed, list(ACTIONS).index(action), i, STYLES.index('realistic')])
    scene = sample_scene(action, rng, RENDER['frames'], RENDER['fps'], zoom=zoom)
    return render_scene(scene, rng, RENDER['size'], 'realistic', plates, background_motion=CAMERA['camera'])[0]


def dataset(zoom, *, seed, indices, plates):
    "`(videos [N, 32, 96, 96, 3] uint8, labels [N])` for `indices` of every downstream action, cached on disk."
    f = OUT/f'videos_{CAMERA["camera"]}_seed{seed}_zoom{zoom}_{indices[0]}-{indices[-1]}.npz'
    if f.exists():
        z = np.load(f)
        return z['x'], z['y']
    x = np.stack([render(seed, a, i, zoom, plates) for a in DOWNSTREAM_ACTIONS for i in indices])
    y = np.repeat(np.arange(len(DOWNSTREAM_ACTIONS)), len(indices))
    f.parent.mkdir(parents=True, exist_ok=True)
    np.savez(f, x=x, y=y)
    return x, y


def to_clips(videos, size, frames, stride, *, train, rng):
    "Normalised `[B, 3, T, size, size]` clips: a random (train) or centre window, crop scale 0.8-1 and flip when training."
    n, total, h = videos.shape[0], videos.shape[1], videos.shape[2]
    out = np.empty((n, frames, size, size, 3), np.float32)
    span = (frames - 1) * stride + 1
    for k in range(n):
        start = rng.integers(total - span + 1) if train else (total - span) // 2
        clip = videos[k, start:start + span:stride]
        s = int(h * np.sqrt(rng.uniform(0.8, 1.0))) if train else h
        y0, x0 = (rng.integers(h - s + 1), rng.integers(h - s + 1)) if train else (0, 0)
        flip = train and rng.random() < 0.5
        for t in range(frames):
            img = clip[t, y0:y0 + s, x0:x0 + s]
            out[k, t] = cv2.resize(img[:, ::-1] if flip else img, (size, size), interpolation=cv2.INTER_AREA)
    x = torch.from_numpy(out).div_(255).sub_(torch.tensor(MEAN)).div_(torch.tensor(STD))
    return x.permute(0, 4, 1, 2, 3).contiguous()


def features(model, x, batch=64):
    model.eval()
    with torch.no_grad(): return torch.cat([model.forward_features(x[i:i + batch]) for i in range(0, len(x), batch)])


def probe(model, xt, yt, xv, yv):
    return float((fit_logistic(features(model, xt), yt, len(DOWNSTREAM_ACTIONS))(features(model, xv)) == yv).float().mean())


def schedule(opt, total, warmup=0.1):
    "Linear warm-up over `warmup` of the steps, then cosine to 0."
    ramp = lambda i: min(1, (i + 1) / max(1, warmup * total))
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda i: ramp(i) * 0.5 * (1 + np.cos(np.pi * i / total)))


def adamw(model, lr, wd=0.05, betas=(0.9, 0.999)):
    "AdamW with weight decay on matrices only (no bias, norm)."
    decay = [p for n, p in model.named_parameters() if p.ndim > 1 and p.requires_grad]
    rest = [p for n, p in model.named_parameters() if p.ndim <= 1 and p.requires_grad]
    return torch.optim.AdamW([dict(params=decay, weight_decay=wd), dict(params=rest, weight_decay=0)], lr=lr, betas=betas)


def supervised(model, x_raw, y, v, *, epochs, lr, batch, rng, warmup=0.1, wd=0.05, shuffle_labels=False, on_epoch=None):
    "Train `model` (with a head) on `(x_raw, y)`, calling `on_epoch(epoch, train top-1)`; returns the last train top-1."
    y = torch.as_tensor(y)
    if shuffle_labels: y = y[torch.as_tensor(rng.permutation(len(y)))]
    opt = adamw(model, lr, wd)
    steps = max(1, len(y) // batch)
    sched = schedule(opt, epochs * steps, warmup)
    for ep in range(epochs):
        model.train()
        order, correct = rng.permutation(len(y)), 0
        for b in range(steps):
            idx = order[b * batch:(b + 1) * batch]
            logits = model(to_clips(x_raw[idx], v['size'], v['frames'], v['stride'], train=True, rng=rng))
            loss = F.cross_entropy(logits, y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            correct += int((logits.argmax(1) == y[idx]).sum())
        if on_epoch: on_epoch(ep, correct / (steps * batch))
    return correct / (steps * batch)


def run(name, *, epochs, lr, batch, train_per_class, seed, width, depth, warmup=0.1, wd=0.05, camera='moving'):
    torch.set_num_threads(1)
    CAMERA['camera'] = camera
    v = VARIANTS[name]
    plates = background_files(clean_plates(OUT.parent/'plates'))
    s = SCALES['demo']
    val_idx = list(range(s.down_train, s.down_train + s.down_val))
    xv_raw, yv = dataset(v['zoom'], seed=300, indices=val_idx, plates=plates)
    xt_raw, yt = dataset(v['zoom'], seed=900, indices=list(range(train_per_class)), plates=plates)
    rng = np.random.default_rng(seed)
    xv = to_clips(xv_raw, v['size'], v['frames'], v['stride'], train=False, rng=rng)
    xt_c = to_clips(xt_raw, v['size'], v['frames'], v['stride'], train=False, rng=rng)
    yt, yv = torch.as_tensor(yt), torch.as_tensor(yv)
    k = len(DOWNSTREAM_ACTIONS)
    row = dict(variant=name, camera=camera, **v, epochs=epochs, lr=lr, batch=batch, train_per_class=train_per_class, seed=seed, width=width,
               depth=depth, val_videos=len(yv))
    row['motion_energy'] = float((fit_logistic(motion_energy(xt_c), yt, k)(motion_energy(xv)) == yv).float().mean())
    row['mean_colour'] = float((fit_logistic(mean_colour(xt_c), yt, k)(mean_colour(xv)) == yv).float().mean())
    torch.manual_seed(seed)
    model = VideoViT(img_size=v['size'], num_frames=v['frames'], patch_size=v['patch'], embed_dim=width, depth=depth,
                     num_heads=4, num_classes=k)
    row['probe_random_init'] = probe(model, xt_c, yt, xv, yv)
    t0, curve = time.time(), []

    def on_epoch(ep, train_top1):
        if (ep + 1) % max(1, epochs // 6) and ep != epochs - 1: return
        model.eval()
        with torch.no_grad(): logits = torch.cat([model(xv[i:i + 64]) for i in range(0, len(xv), 64)])
        curve.append((ep + 1, round(train_top1, 3), round(float((logits.argmax(1) == yv).float().mean()), 3)))
        print(name, curve[-1], f'{time.time() - t0:.0f} s', flush=True)

    supervised(model, xt_raw, yt, v, epochs=epochs, lr=lr, batch=batch, rng=rng, warmup=warmup, wd=wd, on_epoch=on_epoch)
    row.update(finetune=curve[-1][2], train_top1=curve[-1][1], curve=curve, seconds=round(time.time() - t0))
    row['probe_trained'] = probe(model, xt_c, yt, xv, yv)
    with open(OUT/'results.jsonl', 'a') as f: f.write(json.dumps(row) + '\n')
    print(json.dumps(row), flush=True)
    return row


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--variant', action='append', choices=sorted(VARIANTS), required=True)
    ap.add_argument('--epochs', type=int, default=60)
    ap.add_argument('--lr', type=float, default=1e-3)
    ap.add_argument('--batch', type=int, default=32)
    ap.add_argument('--train', type=int, default=100, help='new training videos per class')
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--width', type=int, default=128)
    ap.add_argument('--depth', type=int, default=4)
    ap.add_argument('--jobs', type=int, default=1)
    ap.add_argument('--camera', default='moving', choices=['moving', 'still'], help='over the photos of places')
    a = ap.parse_args()
    kw = dict(epochs=a.epochs, lr=a.lr, batch=a.batch, train_per_class=a.train, seed=a.seed, width=a.width, depth=a.depth,
              camera=a.camera)
    with ProcessPoolExecutor(a.jobs) as pool:
        rows = [f.result() for f in [pool.submit(run, n, **kw) for n in a.variant]]
    for r in rows:
        print(f"{r['variant']:>24}: fine-tune {100 * r['finetune']:.1f}%  probe {100 * r['probe_trained']:.1f}%  "
              f"random-init probe {100 * r['probe_random_init']:.1f}%  motion energy {100 * r['motion_energy']:.1f}%  "
              f"mean colour {100 * r['mean_colour']:.1f}%  ({r['seconds']} s)")


if __name__ == '__main__':
    main()
