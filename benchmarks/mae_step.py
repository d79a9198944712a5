"""One MAE pre-training step (forward, backward, AdamW) at 16 x 224, 90% masking, batch 2, on the CPU:
ppma's MAEVideoViT against transformers' VideoMAEForPreTraining with the same sizes, in one run.

    .venv/bin/python benchmarks/mae_step.py [--models vit_base,vit_small,vit_tiny] [--steps 5]

Every row uses fused AdamW (ppma's default, and the transformers Trainer's on torch >= 2.8). Steps are timed in
interleaved rounds and each row's speed-up is the median over rounds of hf's time / its time in that round:
this VM's speed drifts by 10-20% between seconds, far more than the differences being measured.

Rows: `hf` = VideoMAEForPreTraining (decoder 384 wide, 6 heads, 4 layers, tube masking, float32);
`videomae` = ours with the like-for-like decoder (the ratio goal: >= 1.1x hf in float32);
`ppma` = ours with PPMA's decoder (16 heads, every token predicted), reported beside it;
`videomae-bf16` / `ppma-bf16` = ours under bf16 autocast (goal >= 1.6x hf's float32 step; each row starts from
its float32 twin's weights and takes the same steps on the same batch, and its final loss is printed next to
the twin's). GFLOP/s = FLOPs of the step counted by torch's FlopCounterMode
divided by the measured time. On a GPU the same script reports bf16 steps/s and model FLOPs utilisation.
"""
import argparse, statistics, time

import torch
from torch.utils.flop_counter import FlopCounterMode

from ppma.masking import make_mask
from ppma.models import ARCHITECTURES, create_model, mae_loss

DEC = dict(decoder_embed_dim=384, decoder_depth=4)


def ours(name, decoder_type):
    heads = 6 if decoder_type == 'videomae' else 16
    return create_model(name, mae=True, decoder_type=decoder_type, decoder_num_heads=heads, **DEC)


def hf_model(name):
    from transformers import VideoMAEConfig, VideoMAEForPreTraining
    p = ARCHITECTURES[name]
    cfg = VideoMAEConfig(hidden_size=p['embed_dim'], num_hidden_layers=p['depth'], num_attention_heads=p['num_heads'],
                         intermediate_size=4 * p['embed_dim'], decoder_hidden_size=384, decoder_num_hidden_layers=4,
                         decoder_num_attention_heads=6, decoder_intermediate_size=1536, use_mean_pooling=False,
                         attn_implementation='sdpa')
    return VideoMAEForPreTraining(cfg)


def step_fn(kind, model, x, mask, dtype):
    "A closure doing one optimisation step with fused AdamW (ppma's and the transformers Trainer's default); returns the loss."
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(x.device.type, dtype=dtype, enabled=dtype != torch.float32):
            if kind == 'hf': loss = model(pixel_values=x.transpose(1, 2), bool_masked_pos=mask).loss
            else: loss = mae_loss(model(x, mask), x, mask, norm='videomae' if kind == 'videomae' else 'ppma')
        loss.backward(); opt.step()
        if x.device.type == 'cuda': torch.cuda.synchronize()
        return loss.item()
    return step


def timed(step):
    t0 = time.perf_counter(); loss = step()
    return time.perf_counter() - t0, loss


def measure(steps, rounds):
    """Per row: the median seconds per step, timed in interleaved rounds (hf, ours, hf, ours, ...) so that the
    machine's slow spells fall on every row alike; the median over rounds of the first row's time / its time in
    the same round; and its loss after the last step."""
    for step in steps.values(): step()                               # warm-up
    times, loss = {k: [] for k in steps}, {}
    for _ in range(rounds):
        for k, step in steps.items():
            secs, loss[k] = timed(step); times[k].append(secs)
    base = times[next(iter(steps))]
    return {k: (statistics.median(t), statistics.median(b / s for b, s in zip(base, t)), loss[k]) for k, t in times.items()}


def flops(step):
    with FlopCounterMode(display=False) as fc: step()
    return fc.get_total_flops()


def matmul_rate(dtype, n=1024):
    "GFLOP/s of an n x n matrix product in `dtype` on the CPU."
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    t0 = time.perf_counter(); a @ b
    return 2 * n ** 3 / (time.perf_counter() - t0) / 1e9


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--models', default='vit_base,vit_small,vit_tiny'); ap.add_argument('--steps', type=int, default=5, help='interleaved timing rounds')
    ap.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    a = ap.parse_args()
    dev = torch.device(a.device)
    print(f'device {dev}, torch {torch.__version__}, threads {torch.get_num_threads()}; batch 2, 16 x 224, 90% masked')
    bf16_slow = False
    if dev.type == 'cpu':
        f32, bf16 = matmul_rate(torch.float32), matmul_rate(torch.bfloat16)
        bf16_slow = bf16 < f32 / 2
        print(f'matrix product: float32 {f32:.1f} GFLOP/s, bf16 {bf16:.1f} GFLOP/s'
              + ('  -> this CPU has no bf16 units: the bf16 row is skipped (it would only measure emulation)' if bf16_slow else ''))
    for name in a.models.split(','):
        torch.manual_seed(0)
        x = torch.randn(2, 3, 16, 224, 224, device=dev)
        tube = make_mask('tube', 2, (8, 14, 14), 0.9, device=dev)
        runs = [('hf', 'hf', torch.float32), ('videomae', 'videomae', torch.float32), ('ppma', 'ppma', torch.float32),
                ('videomae-bf16', 'videomae', torch.bfloat16), ('ppma-bf16', 'ppma', torch.bfloat16)]
        if dev.type == 'cpu': runs = runs[:3] if bf16_slow else runs[:4]
        steps, work = {}, {}
        for label, kind, dtype in runs:
            torch.manual_seed(0)                               # a bf16 row starts from its float32 twin's weights
            model = (hf_model(name) if kind == 'hf' else ours(name, kind)).to(dev).train()
            mask = tube if kind != 'ppma' else make_mask('random', 2, (8, 14, 14), 0.9, device=dev)
            steps[label] = step_fn(kind, model, x, mask, dtype)
            work[label] = flops(steps[label])
        results = measure(steps, a.steps)
        for label, (secs, speedup, loss) in results.items():
            extra = ''
            if 'bf16' in label:                                # same weights, batch and number of steps as float32
                ref = results[label.replace('-bf16', '')][2]
                extra += f' (float32 {ref:.4f}, {abs(loss - ref) / ref:.2%} apart)'
            if dev.type == 'cuda':
                peak = 989e12 if 'bf16' in label else 67e12          # H100/H200 dense bf16 / fp32 (TF32 off) peaks
                extra += f', {1 / secs:.2f} steps/s, MFU {work[label] / secs / peak:.1%}'
            print(f'{name:>10} {label:>14}: {secs:6.3f} s/step, {work[label] / secs / 1e9:6.1f} GFLOP/s, '
                  f'{speedup:.2f}x hf, loss after {a.steps + 2} steps {loss:.4f}{extra}')
        print(f'{name:>10} goals: videomae >= 1.1x hf in float32, videomae-bf16 >= 1.6x hf')


if __name__ == '__main__':
    main()
