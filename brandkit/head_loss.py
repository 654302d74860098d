"""The output layer and the cross-entropy in one pass, a slice of rows at a time.

The plain way multiplies every answer position by the vocabulary (49,152 words on SmolLM2) into one
logits tensor of hundreds of megabytes, then reads and writes it again for the log-softmax, its
backward and the zeros of its gradient. On a CPU each of those passes runs at memory speed, and each
fresh tensor that size is new pages for the operating system to hand over (on SmolLM2 on 2 cores the
head and its loss are about a fifth of a training step). Here each slice's logits are a few tens of megabytes, reused
from slice to slice; the loss and the gradient of the slice's hidden states are taken from them at once (the
softmax minus the one-hot target, times the output weights), and the logits are dropped. The
backward pass then only scales the stored gradient. The same loss and gradient, to float rounding.
"""

from __future__ import annotations

import torch

# logits per slice: 2**23 floats (32 MB, about 170 rows of SmolLM2's vocabulary). Measured on 2 cores,
# the head's forward and backward over 1,300 answer tokens: plain 2.3-2.7 s, 2**21 no faster (its
# matmuls of 42 rows are too thin), 2**23 and 2**24 1.8-2.0 s.
SLICE_ELEMENTS = 2**23


class _HeadCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        rows = min(max(16, SLICE_ELEMENTS // weight.shape[0]), max(1, hidden.shape[0]))
        wants_grad = ctx.needs_input_grad[0]
        grad_hidden = torch.empty_like(hidden) if wants_grad else None
        total = hidden.new_zeros((), dtype=torch.float32)
        # one logits buffer for every slice: a fresh tensor this size each slice is fresh pages from the
        # operating system (over glibc's mmap threshold), zeroed by the kernel before the matmul writes them
        raw_buffer = hidden.new_empty((rows, weight.shape[0]))  # the head's own precision (bf16 under autocast)
        logits_buffer = raw_buffer if raw_buffer.dtype == torch.float32 else torch.empty_like(raw_buffer, dtype=torch.float32)
        for start in range(0, hidden.shape[0], rows):
            part, target = hidden[start:start + rows], targets[start:start + rows]
            raw = torch.mm(part, weight.t(), out=raw_buffer[:len(part)])
            logits = raw if logits_buffer is raw_buffer else logits_buffer[:len(part)].copy_(raw)
            # the log-softmax in place: logsumexp would write a temporary the size of the logits
            target_logit = logits.gather(1, target[:, None]).squeeze(1)
            peak = logits.amax(dim=1, keepdim=True)
            sums = logits.sub_(peak).exp_().sum(dim=1)
            total += (sums.log() + peak.squeeze(1) - target_logit).sum()
            if wants_grad:
                softmax = logits.div_(sums[:, None])
                softmax[torch.arange(len(target)), target] -= 1.0
                source = softmax if logits_buffer is raw_buffer else raw.copy_(softmax)
                torch.mm(source, weight, out=grad_hidden[start:start + rows])
        ctx.save_for_backward(grad_hidden)
        return total

    @staticmethod
    def backward(ctx, grad_total: torch.Tensor):
        (grad_hidden,) = ctx.saved_tensors
        return grad_hidden * grad_total.to(grad_hidden.dtype), None, None


def head_cross_entropy_sum(hidden: torch.Tensor, head: torch.nn.Linear, targets: torch.Tensor) -> torch.Tensor:
    """Summed cross-entropy of `head(hidden)` against `targets` (rows x hidden size in, a scalar out),
    the logits never held whole. The head must be a bias-free linear layer whose weight is frozen
    (its gradient is not computed); the hidden states get theirs."""
    if head.weight.requires_grad:
        raise ValueError("head_cross_entropy_sum computes no gradient for the output layer's weight")
    weight = head.weight
    if torch.is_autocast_enabled(hidden.device.type):
        weight = weight.to(torch.get_autocast_dtype(hidden.device.type))
        hidden = hidden.to(weight.dtype)
    return _HeadCrossEntropy.apply(hidden, weight, targets)
