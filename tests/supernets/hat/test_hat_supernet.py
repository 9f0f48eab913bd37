from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from switchnas.supernets.base import SuperNet, check_protocol
from switchnas.supernets.hat.supernet import SuperTransformer
from switchnas.supernets.space import ChoiceSpace

from .conftest import tiny_net


def test_implements_supernet_protocol():
    net = tiny_net()
    check_protocol(net, SuperNet, "supernet")
    assert net.bn_state() == {}
    net.load_bn_state({})


def test_weight_sharing_uses_leading_slices():
    net = tiny_net()
    cfg = net.space.smallest()
    net.activate(cfg)
    src, prev = net.example_pair(cfg, 2, src_len=5, tgt_len=4)
    before = net(src, prev)
    layer = net.encoder_layers[0]
    d, f = cfg["encoder_embed_dim"], cfg["encoder_ffn_embed_dim"][0]
    with torch.no_grad():  # weights outside the active slice do not matter ...
        layer.fc1.weight[f:].add_(1.0)
        layer.fc1.weight[:, d:].add_(1.0)
        net.src_embed.weight[:, d:].add_(1.0)
    torch.testing.assert_close(net(src, prev), before)
    with torch.no_grad():  # ... the leading slice does
        layer.fc1.weight[:f, :d].add_(0.5)
    assert not torch.allclose(net(src, prev), before)
    sub = net.extract(cfg)
    torch.testing.assert_close(sub.encoder_layers[0].fc1.weight, layer.fc1.weight[:f, :d])
    assert sub.encoder_layers[0].fc1.weight.shape == (f, d)
    assert len(sub.decoder_layers) == cfg["decoder_layer_num"]


@pytest.mark.parametrize("space", ["space0", "space1"])
@pytest.mark.parametrize("normalize_before", [False, True])
def test_extract_equals_activated_supernet(space, normalize_before):
    net = tiny_net(space, normalize_before=normalize_before)
    rng = np.random.default_rng(0)
    for cfg in [net.space.largest(), net.space.smallest()] + [net.space.sample(rng) for _ in range(4)]:
        net.activate(cfg)
        src, prev = net.example_pair(cfg, 3, src_len=7, tgt_len=6)
        src[1, 4:] = 0  # padding
        sub = net.extract(cfg).eval()
        torch.testing.assert_close(sub(src, prev), net(src, prev), rtol=1e-5, atol=1e-5)
        assert torch.equal(sub(src), net(src))  # greedy translations


def test_incremental_decoding_matches_teacher_forcing():
    net = tiny_net()
    cfg = net.space.sample(np.random.default_rng(3))
    cfg["decoder_arbitrary_ende_attn"] = [2] * 6
    net.activate(cfg)
    src, prev = net.example_pair(cfg, 2, src_len=6, tgt_len=5)
    full = net(src, prev)
    enc, cache = net.encode(src), net.new_cache()
    steps = [net.decode(prev[:, t: t + 1], enc, cache=cache, start=t) for t in range(5)]
    torch.testing.assert_close(torch.cat(steps, dim=1), full, rtol=1e-5, atol=1e-5)


def test_arbitrary_attention_changes_the_output():
    net = tiny_net()
    cfg = net.space.largest()
    src, prev = net.example_pair(cfg, 1, src_len=6, tgt_len=4)
    outs = []
    for code in (-1, 1, 2):
        net.activate({**cfg, "decoder_arbitrary_ende_attn": [code] * 6})
        outs.append(net(src, prev))
    assert not torch.allclose(outs[0], outs[1]) and not torch.allclose(outs[1], outs[2])


def test_spec_rebuilds_the_network():
    net = tiny_net()
    spec = net.spec()
    assert spec["target"] == "switchnas.supernets.hat.supernet:SuperTransformer"
    mod, cls = spec["target"].split(":")
    other = getattr(__import__(mod, fromlist=[cls]), cls)(**spec["kwargs"])
    other.load_state_dict(net.state_dict())
    other.eval()
    cfg = net.space.sample(np.random.default_rng(0))
    net.activate(cfg)
    other.activate(cfg)
    x = net.example_pair(cfg, 2, src_len=5, tgt_len=3)
    torch.testing.assert_close(other(x), net(*x))  # a tuple as one argument works too
    dup = copy.deepcopy(net)
    torch.testing.assert_close(dup(*x), net(*x))


def test_reduced_space_dict_builds_supernet_with_same_weights():
    net = tiny_net()
    reduced = net.space.restrict({"decoder_layer_num": [1, 2], "encoder_ffn_embed_dim": [32, 64]})
    small = SuperTransformer(src_vocab=24, tgt_vocab=28, space=reduced.to_dict(), width_divisor=32,
                             dropout=0.0).eval()
    small.load_state_dict(net.state_dict())  # same shapes: the weights of the full space
    assert small.space.dimensions == reduced.dimensions
    assert isinstance(small.space, ChoiceSpace)
    cfg = small.space.largest()
    net.activate(cfg)
    x = net.example_pair(cfg, 1, src_len=4, tgt_len=3)
    torch.testing.assert_close(small(*x), net(*x))
    with pytest.raises(ValueError, match="is not allowed; choose from"):
        small.activate(net.space.largest())
    spec = small.spec()
    assert spec["kwargs"]["space"]["dimensions"]["decoder_layer_num"]["choices"] == [[1, 2]]


def test_bad_inputs_have_clear_errors(toy):
    with pytest.raises(ValueError, match="unknown HAT space 'wmt'"):
        SuperTransformer(src_vocab=24, tgt_vocab=28, space="wmt")
    net = tiny_net()
    with pytest.raises(ValueError, match=r"decoder_self_attention_heads\[0\]=3"):
        net.activate({**net.space.largest(), "decoder_self_attention_heads": [3] * 6})
    other = tiny_net(src_vocab=30)
    with pytest.raises(ValueError, match="vocabulary mismatch.*src_vocab=24.*src_vocab=30"):
        other.bind_vocab(toy)
    net.vocab_hash = "0000-1111"
    with pytest.raises(ValueError, match="vocabulary mismatch: the weights were trained"):
        net.bind_vocab(toy)


def test_shared_embeddings_have_no_aliased_tensors():
    net = tiny_net(src_vocab=28, tgt_vocab=28, share_all_embeddings=True)
    ptrs = [t.data_ptr() for t in net.state_dict().values()]
    assert len(ptrs) == len(set(ptrs))
    big = net.space.largest()
    for cfg in [big, {**big, "decoder_embed_dim": 16}, {**big, "encoder_embed_dim": 16}]:
        net.activate(cfg)  # one table, sliced to each side's width
        x = net.example_pair(cfg, 2, src_len=5, tgt_len=4)
        torch.testing.assert_close(net.extract(cfg)(*x), net(*x))


def test_example_input_translates_and_weights_load(tmp_path):
    net = tiny_net()
    cfg = net.space.smallest()
    net.activate(cfg)
    src = net.example_input(cfg, 2)
    assert src.shape == (2, 30) and src.dtype == torch.long
    out = net(src)  # greedy translation, as a runtime bundle runs a request
    assert out.dtype == torch.long and out.shape[0] == 2
    torch.save(net.state_dict(), tmp_path / "w.pt")
    other = tiny_net()
    with torch.no_grad():
        for p in other.parameters():
            p.zero_()
    other.load_weights(tmp_path / "w.pt")
    other.activate(cfg)
    assert torch.equal(other(src), out)
    with pytest.raises(ValueError, match="vocabulary mismatch.*src vocabulary of 24.*30"):
        tiny_net(src_vocab=30).load_weights(tmp_path / "w.pt")


def test_dropout_scales_with_embedding_width_not_ffn_width():
    net = tiny_net(dropout=0.3).train()  # reference widths 20 (encoder and decoder)
    torch.manual_seed(0)
    wide_hidden = torch.ones(200, 96)  # an FFN hidden activation of a 16-wide layer
    dropped = net._drop(wide_hidden, net.ref_enc, 16).eq(0).float().mean().item()
    assert abs(dropped - 0.3 * 16 / 20) < 0.02
