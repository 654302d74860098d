"""LoRA's extra work folded into the frozen layer's own multiplication, forward and backward.

PEFT computes a LoRA layer as `base(x) + lora_B(lora_A(x)) * scaling`: on top of the two thin
multiplications, a full-size pass to scale the update and another to add it, each into a fresh
tensor, and their mirror images on the way back. On a CPU those passes run at memory speed (on
SmolLM2 on 2 cores, about 0.4 s of a training step). Here the update is added inside the output's
own buffer (`addmm_` with the scaling as its alpha), and the backward pass adds the LoRA path's input
gradient into the base layer's the same way. The same output and gradients, to float rounding.

Only the plain case is fused: one active adapter, no dropout, no DoRA or other variant, not merged,
and fp32 without autocast (the path measured here). Anything else runs PEFT's own forward.
"""

from __future__ import annotations

import torch
from peft.tuners.lora import Linear as LoraLinear


class _LoraLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, lora_a, lora_b, scaling: float):
        down = x @ lora_a.t()
        out = torch.addmm(bias, x, weight.t()) if bias is not None else x @ weight.t()
        out.addmm_(down, lora_b.t(), alpha=scaling)
        ctx.save_for_backward(x, weight, lora_a, lora_b, down)
        ctx.scaling = scaling
        return out

    @staticmethod
    def backward(ctx, grad_out):
        x, weight, lora_a, lora_b, down = ctx.saved_tensors
        grad_down = (grad_out @ lora_b).mul_(ctx.scaling)
        grad_b = (grad_out.t() @ down).mul_(ctx.scaling)
        grad_a = grad_down.t() @ x
        grad_x = None
        if ctx.needs_input_grad[0]:
            grad_x = grad_out @ weight
            grad_x.addmm_(grad_down, lora_a)
        return grad_x, None, None, grad_a, grad_b, None


class FusedLoraLinear(LoraLinear):
    """PEFT's LoRA linear layer with the plain case computed by `_LoraLinear`."""

    def _fusable_adapter(self, x: torch.Tensor, args, kwargs) -> str | None:
        if args or kwargs or self.disable_adapters or self.merged or len(self.active_adapters) != 1:
            return None
        name = self.active_adapters[0]
        base = self.get_base_layer()
        if (name not in self.lora_A or name in self.lora_variant or self.fan_in_fan_out
                or not isinstance(self.lora_dropout[name], torch.nn.Identity) or type(base) is not torch.nn.Linear
                or torch.is_autocast_enabled(x.device.type)):
            return None
        dtypes = {x.dtype, base.weight.dtype, self.lora_A[name].weight.dtype, self.lora_B[name].weight.dtype}
        return name if dtypes == {torch.float32} else None

    def forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        name = self._fusable_adapter(x, args, kwargs)
        if name is None:
            return super().forward(x, *args, **kwargs)
        base = self.get_base_layer()
        rows = x.reshape(-1, x.shape[-1])
        out = _LoraLinear.apply(rows, base.weight, base.bias, self.lora_A[name].weight, self.lora_B[name].weight,
                                float(self.scaling[name]))
        return out.reshape(*x.shape[:-1], out.shape[-1])


def fuse_lora_layers(model: torch.nn.Module) -> int:
    """Give every PEFT LoRA linear layer of `model` the fused forward (in place); returns how many."""
    count = 0
    for module in model.modules():
        if type(module) is LoraLinear:
            module.__class__ = FusedLoraLinear
            count += 1
    return count
