"Evaluation protocol, results store and model averaging, end to end on generated videos."
import json, multiprocessing as mp, subprocess, sys
from pathlib import Path

import pytest
import torch

from ppma.checkpoints import load_checkpoint, save_checkpoint
from ppma.evaluate import aggregate, append_result, encoder_states, load_results
from ppma.models import VideoViT
from ppma.training import train

sys.path.insert(0, str(Path(__file__).parent))
from test_training import TINY, toy  # noqa: E402,F401  (the toy dataset fixture)


def _append(args):
    path, i = args
    append_result(path, dict(recipe=f'r{i % 3}', dataset='toy', protocol='finetune', seed=i, top1=i / 100, top5=1.0, mean_class=0.5))


def test_concurrent_appends_keep_every_row(tmp_path):
    with mp.get_context('fork').Pool(4) as pool: pool.map(_append, [(tmp_path / 'results.csv', i) for i in range(40)])
    df = load_results(tmp_path)
    assert len(df) == 40 and sorted(df.seed) == list(range(40))
    agg = aggregate(df)
    assert list(agg['top1_count']) == [14, 13, 13]


def test_learned_mixing_moves_towards_the_better_model(toy, tmp_path):
    good = train('align', data=str(toy), epochs=8, batch_size=6, out_dir=tmp_path / 'good', mixup=0, cutmix=0, lr=3e-3, **TINY)
    sd = load_checkpoint(good['checkpoint'])['model']
    g = torch.Generator().manual_seed(0)
    bad = {k: (v[torch.randperm(v.shape[0], generator=g)] if k.startswith('blocks.') and v.ndim == 2 else v) for k, v in sd.items()}
    m = VideoViT(**{**load_checkpoint(good['checkpoint'])['model_args']}); m.load_state_dict(bad)
    save_checkpoint(tmp_path / 'bad.pt', m)
    s = train('average', data=str(toy), init=[tmp_path / 'bad.pt', good['checkpoint']], mix='learned', epochs=6, batch_size=6,
              out_dir=tmp_path / 'avg', lr=5e-2, **TINY)
    w = load_checkpoint(s['checkpoint'])['mixing_weights']
    assert w[1] > 0.55, w                                        # the trained encoder gains weight


def test_ensemble_file_feeds_the_average_stage(toy, tmp_path):
    a, b = (VideoViT(img_size=32, num_frames=4, embed_dim=128, depth=4, num_heads=4) for _ in range(2))
    ens = {'ensemble_weights': [{'trunk.' + k: v for k, v in x.state_dict().items() if k != 'pos_embed'} for x in (a, b)]}
    for s in ens['ensemble_weights']:
        s['trunk.patch_embed.proj.1.weight'] = s.pop('trunk.patch_embed.proj.weight'); s['trunk.patch_embed.proj.1.bias'] = s.pop('trunk.patch_embed.proj.bias')
    torch.save(ens, tmp_path / 'ensemble.pt')
    assert len(encoder_states(tmp_path / 'ensemble.pt')) == 2
    out = train('average', data=str(toy), init=tmp_path / 'ensemble.pt', mix='learned', epochs=1, batch_size=6, out_dir=tmp_path / 'e', **TINY)
    assert 'acc1' in out['val']


def test_evaluate_refuses_a_head_of_another_size(toy, tmp_path):
    save_checkpoint(tmp_path / 'c7.pt', VideoViT(img_size=32, num_frames=4, embed_dim=128, depth=4, num_heads=4, num_classes=7))
    with pytest.raises(ValueError, match='7 classes, toy has 3'):
        train('evaluate', data=str(toy), init=tmp_path / 'c7.pt', out_dir=tmp_path / 'ev', **TINY)
