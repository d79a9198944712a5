"""Training-clip throughput of ppma's loader against the original PPMA loading path and the decode floor.

    .venv/bin/python benchmarks/loader.py [--videos 4] [--clips 48]

Test videos: 10 s, 30 fps, 568x320 H.264 of panning natural-looking (1/f) texture, x264 defaults (CRF 23,
keyframe interval 250, B-frames on), as YouTube-derived files are. Each clip is 16 frames at 224 from a
random 2.7 s window, without RandAugment (both pipelines would pay the same for it).

- ppma:     ppma.data.VideoClipDataset (decord decodes only the needed frames; crop, then one uint8 resize).
- original: PPMA's path, PyAV through pytorchvideo: seek to the keyframe before the clip, decode the clip
            window converting every frame to RGB, subsample to 16, then /255, ShortSideScale(256) and
            RandomResizedCrop(224) in float torch, then normalise.
- floor:    decord decoding only the 16 frames the clip needs, nothing else.
"""
import argparse, random, time
from pathlib import Path

import av
import numpy as np
import torch
import torch.nn.functional as F
from torchvision.transforms import RandomResizedCrop

from ppma.core import write_video
from ppma.data import MEAN, STD, VideoClipDataset, clip_indices, open_video

CLIP_S, T, SIZE = 2.7, 16, 224


def texture_video(path, seed, seconds=10, fps=30, w=568, h=320):
    "Pan and slowly zoom over a 1/f-noise colour texture: smooth, natural-looking, costly to code."
    rng = np.random.default_rng(seed)
    n = 1024
    fy, fx = np.meshgrid(np.fft.fftfreq(n), np.fft.fftfreq(n), indexing='ij')
    amp = 1 / np.maximum(np.hypot(fx, fy), 1 / n)
    tex = np.stack([np.real(np.fft.ifft2(amp * np.exp(2j * np.pi * rng.random((n, n))))) for _ in range(3)], -1)
    tex = ((tex - tex.min()) / (tex.max() - tex.min()) * 255).astype(np.uint8)
    frames = (tex[int(40 + 8 * np.sin(i / 20)):][:h, 2 * i % (n - w):][:, :w] for i in range(seconds * fps))
    return write_video(path, frames, fps=fps, crf=23)


class Original(torch.utils.data.Dataset):
    "PPMA's loading path (pytorchvideo EncodedVideoPyAV + its transforms), re-created for the comparison."
    def __init__(self, paths): self.paths = paths
    def __len__(self): return len(self.paths)

    def __getitem__(self, i):
        with av.open(str(self.paths[i])) as c:
            s = c.streams.video[0]
            dur = float(s.duration * s.time_base)
            start = random.uniform(0, max(dur - CLIP_S, 0))
            c.seek(int(start / s.time_base) + (s.start_time or 0), stream=s, backward=True)
            frames = []
            for f in c.decode(s):
                t = float(f.pts * s.time_base)
                if t >= start + CLIP_S: break
                if t >= start: frames.append(torch.from_numpy(f.to_rgb().to_ndarray()))
        x = torch.stack(frames).permute(3, 0, 1, 2)                          # C, T, H, W
        x = x[:, torch.linspace(0, x.shape[1] - 1, T).long()].float() / 255
        c_, t_, h, w = x.shape
        sh, sw = (256, round(w * 256 / h)) if h < w else (round(h * 256 / w), 256)
        x = F.interpolate(x, size=(sh, sw), mode='bilinear', align_corners=False)
        y0, x0, bh, bw = RandomResizedCrop.get_params(x[:, 0], (0.08, 1.0), (3 / 4, 4 / 3))
        x = F.interpolate(x[..., y0:y0 + bh, x0:x0 + bw], size=(SIZE, SIZE), mode='bilinear', align_corners=False)
        return (x - torch.tensor(MEAN).view(3, 1, 1, 1)) / torch.tensor(STD).view(3, 1, 1, 1)


class Floor(torch.utils.data.Dataset):
    "Decode only the frames a clip needs with decord."
    def __init__(self, paths): self.paths = paths
    def __len__(self): return len(self.paths)

    def __getitem__(self, i):
        v = open_video(self.paths[i])
        win = round(CLIP_S * v.fps)
        return torch.from_numpy(v.get(clip_indices(random.randint(0, v.num_frames - win), T, win, v.num_frames)))


def rate(ds, clips, workers):
    "Clips per second over `clips` clips (indices cycle through the videos)."
    idx = [i % len(ds) for i in range(clips)]
    random.seed(0); torch.manual_seed(0)                                    # the same draws in every row
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(ds, idx), batch_size=None, num_workers=workers)
    it = iter(loader); next(it)                                              # warm up (workers, imports)
    t0 = time.perf_counter()
    n = sum(1 for _ in it)
    return n / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--videos', type=int, default=4); ap.add_argument('--clips', type=int, default=48)
    ap.add_argument('--out', default='benchmarks/out/loader')
    a = ap.parse_args()
    torch.set_num_threads(1)
    paths = [Path(a.out) / f'texture_{i}.mp4' for i in range(a.videos)]
    for i, p in enumerate(paths):
        if not p.exists(): texture_video(p, i)
    ours = VideoClipDataset([(p.name, 0) for p in paths], a.out, num_frames=T, size=SIZE, train=True)
    sets = {'ppma': ours, 'original': Original(paths), 'floor': Floor(paths)}
    print(f'{a.videos} videos 568x320 30 fps H.264 (CRF 23, keyint 250, B-frames); {a.clips} clips of {T}x{SIZE} per row')
    for workers in (0, 2):
        r = {k: rate(ds, a.clips, workers) for k, ds in sets.items()}
        label = 'single process' if workers == 0 else f'{workers}-worker DataLoader'
        print(f'{label:>22}: ppma {r["ppma"]:.2f} clips/s, original {r["original"]:.2f}, floor {r["floor"]:.2f} | '
              f'ppma/original {r["ppma"] / r["original"]:.2f}x (goal >= 1.5), '
              f'floor/ppma {r["floor"] / r["ppma"]:.2f}x (goal <= 1.25)')


if __name__ == '__main__':
    main()
