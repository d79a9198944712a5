"""One AdamW step over the parameters of the ViT-B MAE model (about 90 M), as ppma's training builds it (timm's
`create_optimizer_v2`, weight-decay groups): torch's fused kernel (ppma's choice) against the default
multi-tensor (`foreach`) implementation, in one run.

    .venv/bin/python benchmarks/optimizer.py [--steps 10]
"""
import argparse, statistics, time

import torch
from timm.optim import create_optimizer_v2

from ppma.models import create_model


def step_times(opt, steps):
    opt.step()                                                # warm-up: creates the moment buffers
    out = []
    for _ in range(steps):
        t0 = time.perf_counter(); opt.step(); out.append(time.perf_counter() - t0)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--steps', type=int, default=10)
    a = ap.parse_args()
    model = create_model('vit_base', mae=True)
    for p in model.parameters(): p.grad = torch.randn_like(p)
    n = sum(p.numel() for p in model.parameters())
    times = {kind: step_times(create_optimizer_v2(model, 'adamw', lr=1e-4, weight_decay=0.05, **kw), a.steps)
             for kind, kw in [('foreach', {}), ('fused', {'fused': True})]}
    for kind, t in times.items(): print(f'{kind:>8}: {statistics.median(t) * 1e3:7.1f} ms per step ({n / 1e6:.1f} M parameters)')
    print(f'fused speed-up: {statistics.median(times["foreach"]) / statistics.median(times["fused"]):.2f}x')


if __name__ == '__main__':
    main()
