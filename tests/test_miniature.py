"The miniature benchmark: its controls can fail, its statistics are right, and a whole run at smoke scale holds together."
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import TINY
from ppma.data import VideoClipDataset, read_split
from ppma.cards import load_card, save_card
from ppma.miniature import SCALES, shuffled_list
from ppma.miniature_results import run_miniature
from ppma.testing import write_test_video
from ppma.training import train


@pytest.fixture(scope='module')
def tints(tmp_path_factory):
    "Three classes of noise tinted red, green or blue, 12 training and 10 validation videos each: learnt in a few epochs."
    root, rng = tmp_path_factory.mktemp('tints'), np.random.default_rng(0)
    for sub, n in (('train', 12), ('val', 10)):
        rows = []
        for label in range(3):
            for i in range(n):
                f = rng.integers(0, 120, (16, 32, 32, 3), dtype=np.uint8); f[..., label] += 120
                write_test_video(root / sub / f'{label}_{i}.mp4', frames=f); rows.append(f'{sub}/{label}_{i}.mp4;{label}\n')
        (root / f'{sub}.csv').write_text(''.join(rows))
    return save_card(root / 'tints.md', {'name': 'tints', 'num_classes': 3, 'label_space': 'tints',
                                         'splits': {'train': 'train.csv', 'val': 'val.csv'}})


def test_the_negative_control_lands_at_chance_where_true_labels_learn(tints, tmp_path):
    """Shuffled labels carry nothing a model can use, so over seeds the control's top-1 averages chance.

    One run says little: the control can only map each tint to some label, so the 10 validation videos of a tint
    move together and a run scores 0, 1/3, 2/3 or 1 of the tints (measured over seeds 0..7: 0.03, 0.67, 0.67,
    0.0, 0.2, 1.0, 0.5, 0.0). The unit of chance is the seed, not the video: the mean over 5 seeds must be
    within 0.25 of 1/3 (about 1.8 standard errors), while true labels are learnt (top-1 above 0.9).
    """
    kw = dict(data=str(tints), init='none', epochs=6, batch_size=6, lr=2e-3, **TINY)
    seeds = range(3, 8)
    control = [train('align', split=str(shuffled_list(tints, tmp_path / f'shuffled{s}.csv', seed=s)), seed=s,
                     out_dir=tmp_path / f'shuffled{s}', **kw)['val']['acc1'] for s in seeds]
    assert abs(sum(control) / len(control) - 1 / 3) <= 0.25, f'shuffled labels reached {control} over seeds {list(seeds)}'
    true = train('align', seed=3, out_dir=tmp_path / 'true', **kw)['val']['acc1']
    assert true > 0.9, f'true labels reached only {true:.2f}: the control proves nothing'


def test_cached_and_decoded_sampling_give_the_same_clips(tints):
    rows = read_split(Path(tints).parent / 'train.csv')[:6]
    for train_views in (True, False):
        a, b = (VideoClipDataset(rows, Path(tints).parent, num_frames=4, clip_seconds=0.6, size=32, train=train_views, cache=c)
                for c in (False, True))
        for d in (a, b): d.set_epoch(7)
        for i in (0, 3, 0, 5):
            assert (a[i].video == b[i].video).all()


def test_mae_reports_its_held_out_loss_beside_predicting_the_mean(tints, tmp_path):
    s = train('mae', data=str(tints), epochs=2, batch_size=6, out_dir=tmp_path / 'mae', **TINY)
    assert s['val']['videos'] == 30 and 0.9 < s['val']['baseline'] <= 1.0 and s['val']['loss'] > 0
    logged = [json.loads(l) for l in (tmp_path / 'mae' / 'metrics.jsonl').read_text().splitlines()]
    assert [r['split'] for r in logged].count('val') == 1 and 'baseline' in logged[-1]


def test_a_smoke_scale_run_holds_together_and_a_rerun_trains_nothing(tmp_path):
    table, checks = run_miniature(tmp_path / 'b', 'smoke', progress=False, report=False)
    summary = json.loads((tmp_path / 'b' / 'summary.json').read_text())
    rows = {(r['recipe'], r['protocol']): r for r in summary['rows']}
    # every recipe probed, the two the demo fine-tunes, and the ceiling read both ways
    assert len(rows) == 6 + 2 + 2 and ('ceiling', 'finetune') in rows and ('ceiling', 'linear_probe') in rows
    assert rows[('mae_nohuman_oracle', 'linear_probe')]['pretrain_seeds'] == SCALES['smoke'].pretrain_seeds == 2
    assert all(r['seeds'] == SCALES['smoke'].seeds for k, r in rows.items() if k[0] != 'ceiling')
    assert all(len(r['interval']) == 2 for r in rows.values()) and 'vs_random_init' in rows[('ppma', 'linear_probe')]
    objectives = [(o['recipe'], o['seed']) for o in summary['objectives']]
    assert sorted(objectives) == sorted((r, p) for r in ('mae_with_humans', 'mae_nohuman_oracle', 'align_synthetic',
                                                          'align_shuffled', 'ppma') for p in (0, 1))
    assert all(l.startswith(('PASS', 'FAIL')) for l in checks.splitlines()) and len(checks.splitlines()) >= 10
    assert '| chance |' in table and 'mean colour' in table and 'motion energy' in table and '| ceiling |' in table
    assert summary['removal'] is None                      # the demo's No-Human arm is exact: no remover in it
    results = (tmp_path / 'b' / 'results.csv').read_text()
    run_miniature(tmp_path / 'b', 'smoke', progress=False, report=False)
    assert (tmp_path / 'b' / 'results.csv').read_text() == results          # finished runs kept: no second row
