"""Fused LoRA layers: PEFT's outputs and gradients, and PEFT's own path wherever the fused one does not apply."""

from __future__ import annotations

import copy

import pytest
import torch
from peft import LoraConfig, get_peft_model

from brandkit.fused_lora import FusedLoraLinear, fuse_lora_layers


class TwoLayers(torch.nn.Module):
    def __init__(self, bias: bool):
        super().__init__()
        self.up = torch.nn.Linear(24, 40, bias=bias)
        self.down = torch.nn.Linear(40, 24, bias=bias)

    def forward(self, x):
        return self.down(torch.nn.functional.silu(self.up(x)))


def lora_model(bias: bool = False, dropout: float = 0.0, seed: int = 0):
    torch.manual_seed(seed)
    model = get_peft_model(TwoLayers(bias), LoraConfig(r=4, lora_alpha=8, lora_dropout=dropout,
                                                       target_modules=["up", "down"]))
    for name, param in model.named_parameters():  # B starts at zero: give it weights so that it matters
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.1)
    return model


def output_and_grads(model, x):
    model.zero_grad(set_to_none=True)
    x = x.clone().requires_grad_(True)
    out = model(x)
    out.square().sum().backward()
    return out.detach(), x.grad, {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("bias", [False, True])
def test_fused_layers_give_peft_outputs_and_gradients(bias):
    x = torch.randn(3, 5, 24)
    reference = output_and_grads(lora_model(bias), x)
    fused_model = lora_model(bias)
    assert fuse_lora_layers(fused_model) == 2
    assert all(type(m) is FusedLoraLinear for n, m in fused_model.named_modules() if n.endswith(("up", "down")))
    fused = output_and_grads(fused_model, x)
    torch.testing.assert_close(fused[0], reference[0])
    torch.testing.assert_close(fused[1], reference[1], rtol=1e-4, atol=1e-6)
    assert fused[2].keys() == reference[2].keys() and len(fused[2]) == 4
    for name, grad in reference[2].items():
        torch.testing.assert_close(fused[2][name], grad, rtol=1e-4, atol=1e-6)


def test_disabled_merged_dropout_and_autocast_take_peft_own_path():
    x = torch.randn(2, 24)
    model = lora_model()
    fuse_lora_layers(model)
    base = TwoLayers(False)
    base.load_state_dict({k.replace("base_model.model.", "").replace(".base_layer", ""): v
                          for k, v in model.state_dict().items() if "lora_" not in k})
    with torch.no_grad():
        with model.disable_adapter():
            torch.testing.assert_close(model(x), base(x))
        tuned = model(x)
        assert not torch.allclose(tuned, base(x))
        model.merge_adapter()
        torch.testing.assert_close(model(x), tuned, rtol=1e-5, atol=1e-5)  # the merged weights, not twice LoRA
        model.unmerge_adapter()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            torch.testing.assert_close(model(x).float(), tuned, rtol=5e-2, atol=5e-2)
    # with dropout, PEFT's path runs: in training mode two calls differ
    noisy = lora_model(dropout=0.5)
    fuse_lora_layers(noisy)
    noisy.train()
    with torch.no_grad():
        assert not torch.equal(noisy(x), noisy(x))


def test_a_fused_model_copies_and_merges_into_a_plain_one():
    x = torch.randn(2, 24)
    model = lora_model()
    fuse_lora_layers(model)
    copied = copy.deepcopy(model)
    with torch.no_grad():
        torch.testing.assert_close(copied(x), model(x))
        copied.base_model.model.up.lora_B["default"].weight.zero_()
        assert not torch.allclose(copied(x), model(x))  # the copy's layers compute with the copy's weights
        tuned = model(x)
        merged = model.merge_and_unload()
        assert type(merged.up) is torch.nn.Linear
        torch.testing.assert_close(merged(x), tuned, rtol=1e-5, atol=1e-5)
