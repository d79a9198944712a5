"Checkpoint interoperability: Hugging Face, original VideoMAE and PPMA (omnivision) layouts."
import pytest
import torch
import torch.nn.functional as F

from ppma.checkpoints import export_hf, load_pretrained, load_state_dicts, save_checkpoint, build_model, load_checkpoint
from ppma.masking import make_mask
from ppma.models import MAEVideoViT, VideoViT

transformers = pytest.importorskip('transformers')
from transformers import VideoMAEConfig, VideoMAEForPreTraining, VideoMAEForVideoClassification  # noqa: E402

SIZE = dict(image_size=32, num_frames=4, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=256)
OURS = dict(img_size=32, num_frames=4, embed_dim=64, depth=2, num_heads=4)


def hf_classifier(seed=0, labels=5):
    torch.manual_seed(seed)
    m = VideoMAEForVideoClassification(VideoMAEConfig(**SIZE, num_labels=labels, layer_norm_eps=1e-6)).eval()
    with torch.no_grad():                       # random biases everywhere, so a dropped or swapped one shows
        for p in m.parameters(): p.add_(torch.randn_like(p) * 0.05)
    return m


def hf_logits(m, x):
    with torch.no_grad(): return m(pixel_values=x.transpose(1, 2)).logits


def our_logits(sd, x, fmt='auto'):
    m = VideoViT(**OURS, num_classes=5).eval()
    missing, _ = load_pretrained(m, sd, format=fmt)
    assert missing == []
    with torch.no_grad(): return m(x)


def to_videomae(hf_sd):
    "An original-VideoMAE fine-tune state dict, written from the reference's key table."
    out = {'patch_embed.proj.weight': hf_sd['videomae.embeddings.patch_embeddings.projection.weight'],
           'patch_embed.proj.bias': hf_sd['videomae.embeddings.patch_embeddings.projection.bias'],
           'fc_norm.weight': hf_sd['fc_norm.weight'], 'fc_norm.bias': hf_sd['fc_norm.bias'],
           'head.weight': hf_sd['classifier.weight'], 'head.bias': hf_sd['classifier.bias']}
    for i in range(SIZE['num_hidden_layers']):
        a, o = f'videomae.encoder.layer.{i}.', f'blocks.{i}.'
        out[o + 'attn.qkv.weight'] = torch.cat([hf_sd[a + f'attention.attention.{n}.weight'] for n in ('query', 'key', 'value')])
        out[o + 'attn.q_bias'] = hf_sd[a + 'attention.attention.query.bias']
        out[o + 'attn.v_bias'] = hf_sd[a + 'attention.attention.value.bias']
        for hf, ours in [('attention.output.dense', 'attn.proj'), ('intermediate.dense', 'mlp.fc1'), ('output.dense', 'mlp.fc2'),
                         ('layernorm_before', 'norm1'), ('layernorm_after', 'norm2')]:
            for s in ('weight', 'bias'): out[o + f'{ours}.{s}'] = hf_sd[a + f'{hf}.{s}']
    return out


def to_hf_v4(hf_sd):
    "The transformers 4.x layout: q_bias / v_bias tensors instead of query / value biases."
    out = {}
    for k, v in hf_sd.items():
        if k.endswith('attention.attention.query.bias'): out[k.replace('query.bias', 'q_bias')] = v
        elif k.endswith('attention.attention.value.bias'): out[k.replace('value.bias', 'v_bias')] = v
        else: out[k] = v
    return out


@pytest.fixture
def clip():
    torch.manual_seed(1)
    return torch.randn(2, 3, 4, 32, 32)


def test_hf_state_dict_gives_the_same_logits(clip):
    hf = hf_classifier()
    assert (our_logits(hf.state_dict(), clip) - hf_logits(hf, clip)).abs().max() < 1e-4


def test_hf_v4_layout_gives_the_same_logits(clip):
    hf = hf_classifier()
    assert (our_logits(to_hf_v4(hf.state_dict()), clip) - hf_logits(hf, clip)).abs().max() < 1e-4


def test_original_videomae_finetune_file_gives_the_same_logits(clip, tmp_path):
    hf = hf_classifier()
    torch.save({'module': to_videomae(hf.state_dict())}, tmp_path / 'videomae_ft.pth')
    assert (our_logits(tmp_path / 'videomae_ft.pth', clip) - hf_logits(hf, clip)).abs().max() < 1e-4


def test_export_hf_then_from_pretrained(clip, tmp_path):
    torch.manual_seed(2)
    ours = VideoViT(**OURS, num_classes=5).eval()
    with torch.no_grad():
        for p in ours.parameters(): p.add_(torch.randn_like(p) * 0.05)
        want = ours(clip)
    export_hf(ours, tmp_path / 'hf')
    hf = VideoMAEForVideoClassification.from_pretrained(tmp_path / 'hf').eval()
    assert (hf_logits(hf, clip) - want).abs().max() < 1e-4
    assert (our_logits(tmp_path / 'hf', clip) - want).abs().max() < 1e-5     # and back from the folder


def test_hf_pretraining_decoder_matches_the_videomae_decoder(clip):
    cfg = VideoMAEConfig(**SIZE, decoder_hidden_size=32, decoder_num_hidden_layers=2, decoder_num_attention_heads=4,
                         decoder_intermediate_size=128, use_mean_pooling=False, layer_norm_eps=1e-6)
    torch.manual_seed(3)
    hf = VideoMAEForPreTraining(cfg).eval()
    with torch.no_grad():
        for p in hf.parameters(): p.add_(torch.randn_like(p) * 0.05)
    for mod in hf.modules():
        if isinstance(mod, torch.nn.LayerNorm): mod.eps = 1e-6                # HF's decoder norm uses the default eps
    mask = make_mask('tube', 2, (2, 2, 2), 0.5)
    with torch.no_grad(): want = hf(pixel_values=clip.transpose(1, 2), bool_masked_pos=mask).logits
    ours = MAEVideoViT(**OURS, decoder_embed_dim=32, decoder_depth=2, decoder_num_heads=4, decoder_type='videomae').eval()
    missing, _ = load_pretrained(ours, hf.state_dict())
    assert missing == []
    with torch.no_grad(): got = ours(clip, mask)
    assert (got - want).abs().max() < 1e-4


# ---- PPMA (omnivision) files, written from the reference's key layout ----

def omnivision_trunk(enc):
    "Encoder weights under PPMA's names."
    sd = enc.state_dict()
    out = {'trunk.pos_embed': sd['pos_embed'], 'trunk.patch_embed.proj.1.weight': sd['patch_embed.proj.weight'],
           'trunk.patch_embed.proj.1.bias': sd['patch_embed.proj.bias'], 'trunk.norm.weight': sd['norm.weight'],
           'trunk.norm.bias': sd['norm.bias']}
    out.update({'trunk.' + k: v for k, v in sd.items() if k.startswith('blocks.')})
    return out


def random_model(cls, **kw):
    torch.manual_seed(4)
    m = cls(**OURS, **kw).eval()
    with torch.no_grad():
        for p in m.parameters(): p.add_(torch.randn_like(p) * 0.05)
    return m


def ref_blocks(sd, prefix, x, depth, heads):
    "A plain-torch pre-norm transformer (the reference's block), independent of timm."
    for i in range(depth):
        p = f'{prefix}{i}.'
        b, n, d = x.shape
        h = F.layer_norm(x, (d,), sd[p + 'norm1.weight'], sd[p + 'norm1.bias'], 1e-6)
        q, k, v = F.linear(h, sd[p + 'attn.qkv.weight'], sd[p + 'attn.qkv.bias']).reshape(b, n, 3, heads, d // heads).permute(2, 0, 3, 1, 4)
        att = ((q @ k.transpose(-2, -1)) * (d // heads) ** -0.5).softmax(-1) @ v
        x = x + F.linear(att.transpose(1, 2).reshape(b, n, d), sd[p + 'attn.proj.weight'], sd[p + 'attn.proj.bias'])
        h = F.layer_norm(x, (d,), sd[p + 'norm2.weight'], sd[p + 'norm2.bias'], 1e-6)
        x = x + F.linear(F.gelu(F.linear(h, sd[p + 'mlp.fc1.weight'], sd[p + 'mlp.fc1.bias'])), sd[p + 'mlp.fc2.weight'], sd[p + 'mlp.fc2.bias'])
    return x


def ref_tokens(sd, x):
    w = sd['trunk.patch_embed.proj.1.weight']
    t = F.conv3d(x, w, sd['trunk.patch_embed.proj.1.bias'], stride=w.shape[2:])
    return t.flatten(2).transpose(1, 2) + sd['trunk.pos_embed']


def test_ppma_aligned_file_loads_and_reproduces_its_logits(clip, tmp_path):
    src = random_model(VideoViT, num_classes=5)
    sd = {**omnivision_trunk(src), 'heads.0.0.weight': src.head.weight.detach(), 'heads.0.0.bias': src.head.bias.detach()}
    torch.save({'model': sd, 'epoch': 49}, tmp_path / 'aligned.pt')
    with torch.no_grad():
        tokens = ref_blocks(sd, 'trunk.blocks.', ref_tokens(sd, clip), 2, 4)
        pooled = F.layer_norm(tokens.mean(1), (64,), sd['trunk.norm.weight'], sd['trunk.norm.bias'], 1e-6)
        want = F.linear(pooled, sd['heads.0.0.weight'], sd['heads.0.0.bias'])
    assert (our_logits(tmp_path / 'aligned.pt', clip) - want).abs().max() < 1e-5


def test_ppma_mae_file_loads_and_reproduces_its_decoder(clip, tmp_path):
    src = random_model(MAEVideoViT, decoder_embed_dim=32, decoder_depth=2, decoder_num_heads=16 // 4)
    s = src.state_dict()
    sd = {**omnivision_trunk(src.encoder), 'trunk.mask_token': s['mask_token'].reshape(1, -1),
          'heads.0.projector.weight': s['head.weight'], 'heads.0.projector.bias': s['head.bias']}
    sd.update({'trunk.' + k: v for k, v in s.items() if k.startswith('decoder.')})
    torch.save({'model': sd}, tmp_path / 'mae.pt')
    mask = make_mask('random', 2, (2, 2, 2), 0.75)
    with torch.no_grad():
        vis = ref_tokens(sd, clip)[~mask].reshape(2, -1, 64)
        vis = F.layer_norm(ref_blocks(sd, 'trunk.blocks.', vis, 2, 4), (64,), sd['trunk.norm.weight'], sd['trunk.norm.bias'], 1e-6)
        full = sd['trunk.mask_token'].expand(2, 8, 64).clone()
        full[~mask] = vis.reshape(-1, 64)
        y = F.linear(full + sd['trunk.decoder.pos_embed'], sd['trunk.decoder.decoder_embed.weight'], sd['trunk.decoder.decoder_embed.bias'])
        y = ref_blocks(sd, 'trunk.decoder.decoder_blocks.', y, 2, 4)
        y = F.layer_norm(y, (32,), sd['trunk.decoder.norm.weight'], sd['trunk.decoder.norm.bias'], 1e-6)
        want = F.linear(y, sd['heads.0.projector.weight'], sd['heads.0.projector.bias'])
    mae = MAEVideoViT(**OURS, decoder_embed_dim=32, decoder_depth=2, decoder_num_heads=4).eval()
    missing, unexpected = load_pretrained(mae, tmp_path / 'mae.pt')
    assert missing == [] and unexpected == []
    with torch.no_grad(): assert (mae(clip, mask) - want).abs().max() < 1e-5
    clf = VideoViT(**OURS, num_classes=5)                                 # a classifier takes the encoder only
    missing, unexpected = load_pretrained(clf, tmp_path / 'mae.pt', exclude=('norm.*',))
    assert missing == ['head.weight', 'head.bias'] and {k.split('.')[0] for k in unexpected} == {'decoder', 'mask_token', 'mae_head'}


def test_ensemble_file_holds_two_models(tmp_path):
    a, b = random_model(VideoViT, num_classes=5), VideoViT(**OURS, num_classes=5)
    torch.save({'ensemble_weights': [{**omnivision_trunk(a)}, {**omnivision_trunk(b)}]}, tmp_path / 'ens.pt')
    sds = load_state_dicts(tmp_path / 'ens.pt')
    assert len(sds) == 2
    m = VideoViT(**OURS)
    load_pretrained(m, sds[0])
    assert torch.equal(m.blocks[1].mlp.fc2.weight, a.blocks[1].mlp.fc2.weight)


def test_checkpoints_are_weights_only_and_atomic(tmp_path, monkeypatch):
    m = VideoViT(**OURS, num_classes=5)
    save_checkpoint(tmp_path / 'a.pt', m, step=7)
    assert load_checkpoint(tmp_path / 'a.pt')['step'] == 7
    def boom(*a, **k): raise OSError('disk full')
    monkeypatch.setattr(torch, 'save', boom)
    with pytest.raises(OSError):
        save_checkpoint(tmp_path / 'a.pt', m, step=8)
    assert load_checkpoint(tmp_path / 'a.pt')['step'] == 7 and [p.name for p in tmp_path.iterdir()] == ['a.pt']


def test_gradient_checkpointing_gives_identical_outputs_and_grads(clip):
    a = random_model(VideoViT, num_classes=5).train()
    b = random_model(VideoViT, num_classes=5, grad_checkpointing=True).train()
    ya, yb = a(clip), b(clip)
    ya.sum().backward(); yb.sum().backward()
    assert torch.equal(ya, yb)
    assert torch.allclose(a.blocks[0].attn.qkv.weight.grad, b.blocks[0].attn.qkv.weight.grad, atol=1e-6)


def test_cli_convert_round_trip_and_features(clip, tmp_path):
    from ppma.cli import main
    from ppma.testing import make_dataset
    src = random_model(VideoViT, num_classes=5)
    save_checkpoint(tmp_path / 'src.pt', src)
    assert main(['convert', str(tmp_path / 'src.pt'), str(tmp_path / 'hf'), '--to', 'hf']) == 0
    assert main(['convert', str(tmp_path / 'hf'), str(tmp_path / 'back.pt'), '--to', 'ppma']) == 0
    back = build_model(tmp_path / 'back.pt').eval()
    with torch.no_grad(): assert (back(clip) - src(clip)).abs().max() < 1e-5
    split = make_dataset(tmp_path / 'data', per_class=2, h=32, w=48)
    assert main(['features', str(tmp_path / 'back.pt'), str(split), str(tmp_path / 'data'), str(tmp_path / 'f.pt'),
                 '--clips', '1', '--crops', '1', '--workers', '0']) == 0
    out = torch.load(tmp_path / 'f.pt', weights_only=True)
    assert out['features'].shape == (6, 64) and out['labels'].tolist() == [0, 0, 1, 1, 2, 2]
