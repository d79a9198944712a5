"The training engine on generated videos: learning, chaining, frozen probes, DDP, resume, clear errors."
import json, os, signal, subprocess, sys, time
from pathlib import Path

import pytest
import torch

from ppma.checkpoints import load_checkpoint, save_checkpoint
from ppma.cards import save_card
from ppma.models import VideoViT
from ppma.training import train

from conftest import TINY

ROOT = Path(__file__).resolve().parents[1]


def epochs_loss(out):
    recs = [json.loads(l) for l in (Path(out) / 'metrics.jsonl').read_text().splitlines()]
    return [r['loss'] for r in recs if r['split'] == 'train_epoch']


@pytest.mark.parametrize('stage,kw', [('mae', dict(lr=3e-3)), ('align', dict(mixup=0, cutmix=0, lr=3e-3)),
                                       ('finetune', dict(mixup=0, cutmix=0, lr=3e-3)), ('linear_probe', dict(lr=3e-2))])
def test_each_stage_learns_the_toy_task(toy, tmp_path, stage, kw):
    s = train(stage, data=str(toy), epochs=6 if stage != 'linear_probe' else 40, batch_size=6, out_dir=tmp_path, **TINY, **kw)
    loss = epochs_loss(tmp_path)
    assert loss[-1] < loss[0] * 0.97, loss
    assert Path(s['checkpoint']).exists()
    # every supervised stage scores its held-out videos at the end, Align included (issue 26: its confusion matrix)
    assert (tmp_path / 'eval-toy.json').exists() == (stage != 'mae')


def test_mae_align_probe_chain_and_frozen_trunk(toy, tmp_path):
    mae = train('mae', data=str(toy), epochs=1, batch_size=6, out_dir=tmp_path / 'mae', **TINY)
    ali = train('align', data=str(toy), init=mae['checkpoint'], epochs=1, batch_size=6, out_dir=tmp_path / 'align', **TINY)
    before = load_checkpoint(ali['checkpoint'])['model']
    lp = train('linear_probe', data=str(toy), init=ali['checkpoint'], epochs=1, batch_size=6, out_dir=tmp_path / 'lp',
               cache_features=False, **TINY)
    after = load_checkpoint(lp['checkpoint'])['model']
    trunk = [k for k in before if not k.startswith(('head.', 'norm.'))]
    assert trunk and all(torch.equal(before[k], after[k]) for k in trunk)       # bit-identical trunk
    assert not torch.equal(after['head.weight'], before['head.weight'])
    assert {'acc1', 'acc5'} <= set(lp['val'])


def run_cli(args, nproc=1, **kw):
    cmd = ([sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', str(nproc), '--master_port', str(29500 + os.getpid() % 1000)]
           if nproc > 1 else [sys.executable]) + [str(Path(sys.executable).parent / 'ppma'), 'train', *args]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True, **kw)


def cli_args(toy, stage, out, epochs=2, extra=()):
    sets = ['model=vit_tiny_cpu', 'size=32', 'num_frames=4', 'clip_seconds=0.6', 'test_clips=1', 'test_crops=1',
            'mixup=0', 'cutmix=0', 'drop_path=0', 'erase_p=0', 'eval_every=0']
    return ['--stage', stage, '--data', str(toy), '--epochs', str(epochs), '--batch-size', '6', '--workers', '0',
            '--out-dir', str(out), *[x for s in sets for x in ('--set', s)], *extra]


@pytest.mark.parametrize('stage', ['mae', 'align'])
def test_two_processes_match_one_with_the_same_global_batch(toy, tmp_path, stage):
    one, two = run_cli(cli_args(toy, stage, tmp_path / 'one')), run_cli(cli_args(toy, stage, tmp_path / 'two'), nproc=2)
    assert one.wait() == 0, one.stderr.read()[-2000:]
    assert two.wait() == 0, two.stderr.read()[-2000:]
    a, b = load_checkpoint(tmp_path / 'one/checkpoint.pt')['model'], load_checkpoint(tmp_path / 'two/checkpoint.pt')['model']
    for k in a:
        assert torch.allclose(a[k], b[k], atol=2e-5, rtol=1e-4), k


def test_killed_run_resumes_to_the_same_weights(toy, tmp_path):
    ref = run_cli(cli_args(toy, 'mae', tmp_path / 'ref', epochs=3))
    p = run_cli(cli_args(toy, 'mae', tmp_path / 'run', epochs=3))
    metrics = tmp_path / 'run/metrics.jsonl'
    deadline = time.time() + 240
    while time.time() < deadline:                      # kill -9 as soon as epoch 1 (the second) has started
        if metrics.exists() and any(json.loads(l)['epoch'] == 1 and json.loads(l)['split'] == 'train' for l in metrics.read_text().splitlines()):
            break
        time.sleep(0.05)
    os.killpg(p.pid, signal.SIGKILL); p.wait()
    recs = [json.loads(l) for l in metrics.read_text().splitlines()]
    assert not any(r['epoch'] == 1 and r['split'] == 'train_epoch' for r in recs)      # it died mid-epoch
    for f in (tmp_path / 'run').glob('*.pt'):
        load_checkpoint(f)                              # every visible checkpoint is whole
    assert not (tmp_path / 'run/checkpoint.pt').exists()
    q = run_cli(cli_args(toy, 'mae', tmp_path / 'run', epochs=3, extra=['--resume']))
    assert q.wait() == 0 and ref.wait() == 0
    a, b = load_checkpoint(tmp_path / 'ref/checkpoint.pt')['model'], load_checkpoint(tmp_path / 'run/checkpoint.pt')['model']
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_clear_errors_before_work(toy, tmp_path):
    with pytest.raises(ValueError, match='stage'): train('pretrain', data=str(toy))
    with pytest.raises(ValueError, match='preset'): train('mae', preset='giant', data=str(toy))
    with pytest.raises(FileNotFoundError, match='not found'): train('mae', data='no_such_card', out_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match='init: checkpoint'): train('align', data=str(toy), init=tmp_path / 'x.pt', out_dir=tmp_path)
    with pytest.raises(ValueError, match='larger than toy'): train('mae', data=str(toy), batch_size=100, out_dir=tmp_path, **TINY)
    with pytest.raises(FileNotFoundError, match='no train split'): train('mae', data='kinetics150', data_root=tmp_path)
    other = tmp_path / 'other.pt'
    save_checkpoint(other, VideoViT(img_size=32, num_frames=4, embed_dim=96, depth=1, num_heads=2))
    with pytest.raises(ValueError, match='another architecture'):
        train('align', data=str(toy), init=other, epochs=1, batch_size=6, out_dir=tmp_path / 'o', **TINY)
    bad = tmp_path / 'bad.csv'
    bad.write_text((Path(toy).parent / 'train.csv').read_text() + 'train/up/up_000.mp4;7\n')
    card = save_card(tmp_path / 'bad.md', {'name': 'bad', 'num_classes': 3, 'splits': {'train': str(bad), 'val': None}})
    with pytest.raises(ValueError, match='label 7 of train/up/up_000.mp4 is outside its 3 classes'):
        train('align', data=str(card), data_root=Path(toy).parent, out_dir=tmp_path, **TINY)


def test_joint_align_on_two_datasets_with_their_own_heads(toy, tmp_path):
    other = save_card(tmp_path / 'other.md', {'name': 'other', 'num_classes': 3, 'label_space': 'other',
                                              'splits': {'train': str(Path(toy).parent / 'train.csv'), 'val': None}})
    s = train('align', data=f'{toy},{other}', data_root=f'{Path(toy).parent},{Path(toy).parent}', epochs=1, batch_size=6,
              out_dir=tmp_path / 'joint', **TINY)
    ck = load_checkpoint(s['checkpoint'])
    assert ck['model']['head.weight'].shape == (3, 128) and ck['extra_heads']['0.weight'].shape == (3, 128)
    run = json.loads((tmp_path / 'joint' / 'run.json').read_text())
    assert [d['label_space'] for d in run['data']] == ['toy', 'other']


def test_accumulation_matches_the_bigger_batch(toy, tmp_path):
    "Two micro-batches of 3 with accum=2 make the same updates as batches of 6 (no randomness in the recipe)."
    kw = dict(data=str(toy), epochs=2, out_dir=None, mixup=0, cutmix=0, drop_path=0, erase_p=0, eval_every=0, **TINY)
    a = train('align', batch_size=6, **{**kw, 'out_dir': tmp_path / 'big'})
    b = train('align', batch_size=3, accum=2, **{**kw, 'out_dir': tmp_path / 'acc'})
    wa, wb = load_checkpoint(a['checkpoint'])['model'], load_checkpoint(b['checkpoint'])['model']
    for k in wa:
        assert torch.allclose(wa[k], wb[k], atol=2e-5, rtol=1e-4), k


def test_bf16_autocast_tracks_float32(toy, tmp_path):
    "The same MAE run in bf16 autocast and in float32: per-epoch losses within 1%, weights not identical (bf16 ran)."
    kw = dict(data=str(toy), epochs=3, batch_size=6, **TINY)
    ref = train('mae', amp='none', out_dir=tmp_path / 'f32', **kw)
    low = train('mae', amp='bf16', out_dir=tmp_path / 'bf16', **kw)
    f32, bf16 = epochs_loss(ref['out_dir']), epochs_loss(low['out_dir'])
    assert len(f32) == len(bf16) == 3
    assert all(abs(a - b) <= 0.01 * a for a, b in zip(f32, bf16)), (f32, bf16)
    wa, wb = load_checkpoint(ref['checkpoint'])['model'], load_checkpoint(low['checkpoint'])['model']
    assert not all(torch.equal(wa[k], wb[k]) for k in wa)


def test_killed_run_resumes_mid_epoch_to_the_same_weights(toy, tmp_path):
    "Checkpoints every update; killed inside an epoch, the resumed run skips the batches done (drop path on: RNGs restored)."
    extra = ['--batch-size', '2', '--set', 'save_every_steps=1', '--set', 'drop_path=0.2']
    ref = run_cli(cli_args(toy, 'mae', tmp_path / 'ref', epochs=3, extra=extra))
    p = run_cli(cli_args(toy, 'mae', tmp_path / 'run', epochs=3, extra=extra))
    last, seen, deadline = tmp_path / 'run/checkpoint-last.pt', None, time.time() + 240
    while time.time() < deadline and p.poll() is None:     # kill -9 once a checkpoint inside epoch 1 or 2 is on disk
        try: ck = torch.load(last, weights_only=True) if last.exists() else {}
        except (RuntimeError, EOFError, OSError): ck = {}
        if ck.get('progress') and ck['epoch'] >= 1: seen = (ck['epoch'], ck['progress']['batch']); break
        time.sleep(0.02)
    os.killpg(p.pid, signal.SIGKILL); p.wait()
    assert seen, 'the run ended before a mid-epoch checkpoint was seen'
    q = run_cli(cli_args(toy, 'mae', tmp_path / 'run', epochs=3, extra=[*extra, '--resume']))
    assert q.wait() == 0, q.stderr.read()[-2000:]
    assert ref.wait() == 0, ref.stderr.read()[-2000:]
    a, b = load_checkpoint(tmp_path / 'ref/checkpoint.pt')['model'], load_checkpoint(tmp_path / 'run/checkpoint.pt')['model']
    assert all(torch.equal(a[k], b[k]) for k in a), seen


def test_a_setting_switched_off_stays_off():
    "`--set amp=none` was read as None and dropped (fp16 stayed); None given as a setting switches it off."
    from ppma.cli import _value
    from ppma.training import stage_config
    assert _value('none', 'amp') == 'none' and _value('none', 'clip_grad') is None and _value('0.5', 'clip_grad') == 0.5
    assert stage_config('mae', 'paper-vitb')['amp'] == 'fp16'
    assert stage_config('mae', 'paper-vitb', settings={'amp': _value('none', 'amp')})['amp'] == 'none'
    assert stage_config('finetune', 'paper-vitb')['layer_decay'] == 0.75
    assert stage_config('finetune', 'paper-vitb', settings={'layer_decay': None})['layer_decay'] is None
    assert stage_config('finetune', 'paper-vitb', epochs=None)['epochs'] == 30          # a run parameter left unset
    with pytest.raises(ValueError, match='lr=None'):
        stage_config('finetune', settings={'lr': None})


@pytest.mark.parametrize('stage,clips,videos_per_epoch', [('mae', 128, 0.25), ('align', 128, 1.0)])
def test_a_paper_step_takes_ppmas_clips(stage, clips, videos_per_epoch):
    """../shared/spec/ppma-reference.md (data pipeline, hyper-parameters): a step is 128 clips (MAE: 4 views of
    each of 32 videos), an epoch N clips (MAE reads N/4 videos), peak lr 8e-4 (MAE) / 2e-3 (Align) at that batch."""
    from ppma.engine import batch_sampler
    from ppma.training import stage_config
    cfg, n = stage_config(stage, 'paper-vitb', seed=0), 128 * 100               # N videos in the list
    sampler = batch_sampler(cfg, [n])
    assert sampler.batch_size * cfg['repeat'] == clips == cfg['batch_size'] == cfg['ref_batch']
    assert len(sampler) == n // clips                                      # steps per epoch: N clips / 128
    videos = {i for _, b in sampler.global_batches() for i in b}
    assert len(videos) == n * videos_per_epoch
    assert cfg['lr'] == {'mae': 8e-4, 'align': 2e-3}[stage]
    per_gpu = batch_sampler(cfg, [n], rank=3, world=8)                     # 8 GPUs: MAE 4 videos x 4 views each
    assert len(next(iter(per_gpu))) * cfg['repeat'] == 16


@pytest.mark.parametrize('stage', ['mae', 'align'])
def test_train_reaches_the_loss_in_four_calls_and_build_leaves_no_hidden_state(toy, tmp_path, monkeypatch, stage):
    """Issue 28: `train` -> `train_stage` -> `fit` -> `train_epoch` -> the stage's `loss`, and `build` returns what the
    engine needs (`Built`) instead of setting attributes on the stage."""
    import inspect
    from ppma.stages import STAGES
    cls, seen = STAGES[stage], []
    loss, build = cls.loss, cls.build

    def spy_loss(self, *a, **kw):
        frames = [f for f in inspect.stack()[1:] if '/ppma/' in f.filename]
        names = [f.function for f in frames]
        seen.append(names[:names.index('train') + 1])
        return loss(self, *a, **kw)

    def spy_build(self, *a, **kw):
        before = dict(vars(self))
        out = build(self, *a, **kw)
        assert vars(self) == before, f'build set {set(vars(self)) - set(before)}'
        return out

    monkeypatch.setattr(cls, 'loss', spy_loss)
    monkeypatch.setattr(cls, 'build', spy_build)
    train(stage, data=str(toy), epochs=1, batch_size=6, out_dir=tmp_path, **TINY, **({'mixup': 0.8} if stage == 'align' else {}))
    assert seen and seen[0] == ['train_epoch', 'fit', 'train_stage', 'train'], seen[0]
