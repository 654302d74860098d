"""Head-loss benchmark: SmolLM2's output layer and cross-entropy, forward and backward, plain vs sliced.

    python benchmarks/bench_head_loss.py [--rows 1300] [--repeats 5]

Random hidden states the size of a CPU training batch's answers (about 1,300 tokens at batch 8) go
through a frozen 576 x 49,152 head. The baseline, run in the same process and interleaved with the
contender so the machine's noise falls on both, is the plain path: the whole logits tensor, then
`cross_entropy`. The contender is `brandkit.head_loss` at its default slice size. Prints the median
seconds of each and the speed-up; a few seconds in all.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from brandkit.head_loss import SLICE_ELEMENTS, head_cross_entropy_sum  # noqa: E402

VOCABULARY, WIDTH = 49_152, 576  # SmolLM2-135M


def plain(head: torch.nn.Linear, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.cross_entropy(head(hidden).float(), targets, reduction="sum")


def timed(loss_fn, head, hidden, targets) -> tuple[float, float]:
    hidden = hidden.clone().requires_grad_(True)
    start = time.perf_counter()
    loss = loss_fn(head, hidden, targets)
    loss.backward()
    return time.perf_counter() - start, loss.item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1300)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.manual_seed(0)
    head = torch.nn.Linear(WIDTH, VOCABULARY, bias=False).requires_grad_(False)
    hidden, targets = torch.randn(args.rows, WIDTH), torch.randint(0, VOCABULARY, (args.rows,))
    times = {"plain": [], "sliced": []}
    losses = {}
    timed(plain, head, hidden, targets)  # warm-up: first-touch pages and kernels
    for _ in range(args.repeats):
        for name, loss_fn in (("plain", plain), ("sliced", lambda h, x, t: head_cross_entropy_sum(x, h, t))):
            seconds, losses[name] = timed(loss_fn, head, hidden, targets)
            times[name].append(seconds)
    flops = 2 * 2 * args.rows * WIDTH * VOCABULARY  # the logits, and the hidden states' gradient
    print(f"{args.rows} rows x {VOCABULARY} words, {torch.get_num_threads()} threads, "
          f"slices of {SLICE_ELEMENTS // VOCABULARY} rows")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"  {name:7s} median {median:.3f} s  ({flops / median / 1e9:.0f} GFLOP/s)  loss {losses[name]:.2f}")
    ratio = statistics.median(times["plain"]) / statistics.median(times["sliced"])
    print(f"sliced vs plain: {ratio:.2f}x faster (same loss to {abs(losses['plain'] - losses['sliced']):.2g})")


if __name__ == "__main__":
    main()
