"""Which pre-training transfers to the miniature's downstream task, fast: the demo's recipes in memory.

    .venv/bin/python benchmarks/transfer.py --recipe random_init --recipe align:mannequin_plates [--pretrain-seeds 2]

A design tool, not the benchmark (`make demo` is): videos rendered straight to arrays with the demo's seeds
(`benchmarks/ceiling.py` renders them and caches them), the project's `VideoViT` and `MAEVideoViT`, a plain
AdamW loop. Each recipe is pre-trained with `--pretrain-seeds` seeds, then probed (logistic regression on
frozen centre-clip features) and fine-tuned on the demo's 15 downstream videos per class with
`--down-seeds` seeds each, validated on its 120 validation videos. Prints each cell and the paired
difference to random init.
"""
import argparse, json, time

import numpy as np
import torch
import torch.nn.functional as F

from ceiling import CAMERA, OUT, VARIANTS, adamw, dataset, features, schedule, supervised, to_clips
from ppma.bodies import ACTIONS
from ppma.masking import make_mask
from ppma.miniature import DOWNSTREAM_ACTIONS, SCALES, clean_plates, fit_logistic
from ppma.models import MAEVideoViT, VideoViT
from ppma.synth import STYLES, background_files, render_scene, sample_scene
from ppma.training import SOURCE_ACTIONS

ARCH = dict(embed_dim=128, depth=4, num_heads=4)


def source(style, backgrounds, zoom, per_class, *, seed, classes, people=True):
    "`(videos, labels)` of `classes` rendered in `style` over plates or procedural rooms, cached."
    f = OUT/f'src_{CAMERA["camera"]}_{style}_{backgrounds}_z{zoom}_n{per_class}_s{seed}_{len(classes)}c_p{int(people)}.npz'
    if f.exists():
        z = np.load(f)
        return z['x'], z['y']
    bg = background_files(clean_plates(OUT.parent/'plates')) if backgrounds == 'plates' else None
    xs, ys = [], []
    for label, a in enumerate(classes):
        for i in range(per_class):
            rng = np.random.default_rng([seed, list(ACTIONS).index(a), i, STYLES.index(style)])
            scene = sample_scene(a, rng, 32, 15, zoom=zoom)
            xs.append(render_scene(scene, rng, 96, style, bg, people=people, background_motion=CAMERA['camera'])[0])
            ys.append(label)
    x, y = np.stack(xs), np.array(ys)
    np.savez(f, x=x, y=y)
    return x, y


def mae(model, x_raw, v, *, updates, lr, batch, rng):
    opt = adamw(model, lr, betas=(0.9, 0.95))
    sched = schedule(opt, updates)
    model.train()
    losses = []
    for step in range(updates):
        idx = rng.integers(0, len(x_raw), batch)
        x = to_clips(x_raw[idx], v['size'], v['frames'], v['stride'], train=True, rng=rng)
        mask = make_mask('random', batch, model.encoder.token_grid(x), 0.9)
        loss = model.forward_loss(x, model(x, mask), mask)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
    return float(np.mean(losses[-20:]))


def pretrain(recipe, v, p_seed, a):
    "An encoder state dict pre-trained by `recipe` (`kind:data`), and what its objective reached."
    torch.manual_seed(1000 + p_seed)
    rng = np.random.default_rng(1000 + p_seed)
    kind, _, data = recipe.partition(':')
    enc = VideoViT(img_size=v['size'], num_frames=v['frames'], patch_size=v['patch'], **ARCH)
    if kind == 'random_init': return enc.state_dict(), None
    if kind == 'mae':                                   # data: people | oracle | mannequin_plates
        people = data != 'oracle'
        style = 'mannequin' if data.startswith('mannequin') else 'realistic'
        x, _ = source(style, 'plates', v['zoom'], a.mae_per_class, seed=100, classes=list(ACTIONS), people=people)
        m = MAEVideoViT(img_size=v['size'], num_frames=v['frames'], patch_size=v['patch'], **ARCH, decoder_embed_dim=64,
                        decoder_depth=2, decoder_num_heads=4)
        obj = mae(m, x, v, updates=a.mae_updates, lr=a.mae_lr, batch=32, rng=rng)
        return m.encoder.state_dict(), obj
    # align / shuffled: data like mannequin_plates, mannequin_rooms, realistic_plates
    style, bg = data.split('_')
    x, y = source(style, bg, a.source_zoom, a.source_per_class, seed=200, classes=list(SOURCE_ACTIONS))
    model = VideoViT(img_size=v['size'], num_frames=v['frames'], patch_size=v['patch'], **ARCH, num_classes=len(SOURCE_ACTIONS))
    if a.init_from:
        model.load_state_dict(a.init_from[p_seed], strict=False)
    obj = supervised(model, x, y, v, epochs=a.align_epochs, lr=a.align_lr, batch=32, rng=rng, shuffle_labels=kind == 'shuffled')
    return {k: t for k, t in model.state_dict().items() if not k.startswith('head')}, obj


def downstream(state, v, d_seed, xt_raw, yt, xv, yv, a):
    "Probe and fine-tune top-1 (per-video 0/1) of an encoder state on the demo's downstream split."
    k = len(DOWNSTREAM_ACTIONS)
    rng = np.random.default_rng(d_seed)
    torch.manual_seed(d_seed)
    model = VideoViT(img_size=v['size'], num_frames=v['frames'], patch_size=v['patch'], **ARCH, num_classes=k)
    model.load_state_dict(state, strict=False)
    # the probe: logistic regression on frozen features of training views (a few augmented views per video)
    views = torch.cat([to_clips(xt_raw, v['size'], v['frames'], v['stride'], train=True, rng=rng) for _ in range(a.probe_views)])
    yy = torch.as_tensor(yt).repeat(a.probe_views)
    probe = (fit_logistic(features(model, views), yy, k, weight_decay=a.probe_wd)(features(model, xv)) == yv).float().numpy()
    if not a.ft_epochs: return probe, probe * np.nan
    supervised(model, xt_raw, yt, v, epochs=a.ft_epochs, lr=a.ft_lr, batch=16, rng=rng)
    model.eval()
    with torch.no_grad(): ft = (model(xv).argmax(1) == yv).float().numpy()
    return probe, ft


def summary(tag):
    "The probe (and fine-tune) gain of each recipe over random init for each variant run under `tag`, with intervals."
    from ppma.miniature_results import hierarchical, paired
    lines = [json.loads(l) for l in (OUT/'transfer.jsonl').read_text().splitlines()]
    lines = [l for l in lines if l.get('tag') == tag]
    def cells(l, k):
        n, runs = l['down_seeds'], l[f'{k}_videos']
        return {p: {d: np.array(runs[p * n + d]) for d in range(n)} for p in range(len(runs) // n)}
    for variant in dict.fromkeys(l['variant'] for l in lines):
        mine = {l['recipe']: l for l in lines if l['variant'] == variant}
        ref = mine.get('random_init')
        for recipe, l in mine.items():
            for k in ('probe', 'ft'):
                if np.isnan(l[f'{k}_mean']): continue
                m, lo, hi = hierarchical(cells(l, k))
                text = f'{variant:>16} {recipe:>24} {k:>5}: {100 * m:5.1f} [{100 * lo:.1f}, {100 * hi:.1f}]'
                if ref is not None and recipe != 'random_init':
                    d = hierarchical(paired(cells(l, k), cells(ref, k)))
                    text += f'  vs random init {100 * d[0]:+.1f} [{100 * d[1]:+.1f}, {100 * d[2]:+.1f}]'
                print(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--summary', metavar='TAG', help='print the table of the runs tagged TAG and stop')
    ap.add_argument('--recipe', action='append')
    ap.add_argument('--variant', default='base', choices=sorted(VARIANTS))
    ap.add_argument('--pretrain-seeds', type=int, default=2)
    ap.add_argument('--down-seeds', type=int, default=3)
    ap.add_argument('--source-per-class', type=int, default=120)
    ap.add_argument('--source-zoom', type=float, default=2.0)
    ap.add_argument('--align-epochs', type=int, default=30)
    ap.add_argument('--align-lr', type=float, default=1e-3)
    ap.add_argument('--mae-per-class', type=int, default=36)
    ap.add_argument('--mae-updates', type=int, default=480)
    ap.add_argument('--mae-lr', type=float, default=1.5e-3)
    ap.add_argument('--ft-epochs', type=int, default=25)
    ap.add_argument('--ft-lr', type=float, default=1e-3)
    ap.add_argument('--probe-views', type=int, default=1)
    ap.add_argument('--probe-wd', type=float, default=1e-3)
    ap.add_argument('--down-train', type=int, default=SCALES['demo'].down_train)
    ap.add_argument('--tag', default='')
    ap.add_argument('--camera', default='moving', choices=['moving', 'still'], help='over the photos of places')
    a = ap.parse_args()
    if a.summary: return summary(a.summary)
    a.init_from = None
    CAMERA['camera'] = a.camera
    torch.set_num_threads(1)
    v = VARIANTS[a.variant]
    s = SCALES['demo']
    plates = background_files(clean_plates(OUT.parent/'plates'))
    xv_raw, yv = dataset(v['zoom'], seed=300, indices=list(range(s.down_train, s.down_train + s.down_val)), plates=plates)
    # the demo's own training videos, or (for another size) new ones from a seed the demo never uses
    xt_raw, yt = dataset(v['zoom'], seed=300 if a.down_train == s.down_train else 301, indices=list(range(a.down_train)),
                         plates=plates)
    xv, yv = to_clips(xv_raw, v['size'], v['frames'], v['stride'], train=False, rng=None), torch.as_tensor(yv)
    res = {}
    for recipe in a.recipe:
        t0 = time.time()
        cells, objs = {'probe': [], 'ft': []}, []
        for p in range(1 if recipe == 'random_init' else a.pretrain_seeds):
            state, obj = pretrain(recipe, v, p, a)
            objs.append(obj)
            for d in range(a.down_seeds):
                pr, ft = downstream(state, v, d, xt_raw, yt, xv, yv, a)
                cells['probe'].append(pr)
                cells['ft'].append(ft)
        res[recipe] = cells
        line = {'recipe': recipe, 'tag': a.tag, 'variant': a.variant, 'down_train': a.down_train, 'down_seeds': a.down_seeds, 'objective': objs, 'seconds': round(time.time() - t0),
                **{k: [round(float(c.mean()), 3) for c in cs] for k, cs in cells.items()}}
        for k in ('probe', 'ft'):
            line[f'{k}_mean'] = round(float(np.mean(line[k])), 3)
            line[f'{k}_videos'] = [c.tolist() for c in cells[k]]
            if recipe != 'random_init' and 'random_init' in res:
                ref = res['random_init'][k]
                diffs = [float(c.mean() - ref[i % len(ref)].mean()) for i, c in enumerate(cells[k])]
                line[f'{k}_vs_random'] = round(float(np.mean(diffs)), 3)
        print(json.dumps(line), flush=True)
        with open(OUT/'transfer.jsonl', 'a') as f: f.write(json.dumps(line) + '\n')


if __name__ == '__main__':
    main()
