"""The sliced head loss: the same loss and hidden-state gradient as the plain logits, any slice size."""

from __future__ import annotations

import pytest
import torch

from brandkit import head_loss
from brandkit.head_loss import head_cross_entropy_sum


def random_case(rows: int = 37, width: int = 24, vocab: int = 300, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    head = torch.nn.Linear(width, vocab, bias=False)
    with torch.no_grad():
        head.weight.copy_(torch.randn(vocab, width, generator=generator))
    head.weight.requires_grad_(False)
    hidden = torch.randn(rows, width, generator=generator)
    targets = torch.randint(0, vocab, (rows,), generator=generator)
    return head, hidden, targets


def plain(head, hidden, targets):
    hidden = hidden.clone().requires_grad_(True)
    loss = torch.nn.functional.cross_entropy(head(hidden).float(), targets, reduction="sum")
    (loss * 0.5).backward()  # a scale on the way back, as the trainer's division by the token count
    return loss.detach(), hidden.grad


def sliced(head, hidden, targets):
    hidden = hidden.clone().requires_grad_(True)
    loss = head_cross_entropy_sum(hidden, head, targets)
    (loss * 0.5).backward()
    return loss.detach(), hidden.grad


@pytest.mark.parametrize("slice_elements", [300 * 16, 300 * 20, 2**21])  # 3 slices, 2 uneven ones, one
def test_the_sliced_loss_and_gradient_equal_the_plain_ones(monkeypatch, slice_elements):
    monkeypatch.setattr(head_loss, "SLICE_ELEMENTS", slice_elements)
    head, hidden, targets = random_case()
    expected_loss, expected_grad = plain(head, hidden, targets)
    loss, grad = sliced(head, hidden, targets)
    torch.testing.assert_close(loss, expected_loss, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(grad, expected_grad, rtol=1e-4, atol=1e-5)


def test_without_a_gradient_only_the_loss_is_computed():
    head, hidden, targets = random_case()
    expected_loss, _ = plain(head, hidden, targets)
    with torch.no_grad():
        loss = head_cross_entropy_sum(hidden, head, targets)
    assert not loss.requires_grad
    torch.testing.assert_close(loss, expected_loss, rtol=1e-5, atol=1e-4)


def test_a_trained_head_is_refused_rather_than_silently_left_untrained():
    head, hidden, targets = random_case()
    head.weight.requires_grad_(True)
    with pytest.raises(ValueError, match="output layer"):
        head_cross_entropy_sum(hidden, head, targets)


def test_under_bf16_autocast_it_follows_the_plain_path_closely():
    head, hidden, targets = random_case(width=64)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        expected_loss, expected_grad = plain(head, hidden, targets)
        loss, grad = sliced(head, hidden, targets)
    assert grad.dtype == expected_grad.dtype == torch.float32
    torch.testing.assert_close(loss, expected_loss, rtol=1e-2, atol=1e-2)
    torch.testing.assert_close(grad, expected_grad, rtol=5e-2, atol=5e-2)
