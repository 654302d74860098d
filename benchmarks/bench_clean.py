"""Clean benchmark: 100,000 generated business documents through every cleaning step.

    python benchmarks/bench_clean.py [--documents 100000] [--num-proc 2]

Prints documents per second for the whole clean stage, then the near-duplicate step alone at 10k,
20k and 40k documents with the ratio to the 10k run (the baseline in the same process): close to
2x and 4x means linear growth; 4x and 16x would be quadratic. Target: 100,000 documents in under
2 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from brandkit.clean import clean  # noqa: E402
from brandkit.collect import Record, record_features  # noqa: E402
from brandkit.config import BrandKit, CleanConfig  # noqa: E402

VOCABULARY = ("our new season range is here and we think you will love it made fresh every week in small batches "
              "with care come and see us in the shop this weekend order online for delivery on tuesday thanks "
              "for your order it has been packed and will arrive soon please let us know if anything is wrong "
              "we are closed on monday for stocktaking the garden centre opens at nine the bakery sells bread "
              "cakes and pastries our team can help with returns exchanges gift cards and bookings").split()
FOOTER = ("\n\nView this email in your browser\nYou are receiving this email because you signed up.\n"
          "Unsubscribe | Update your preferences\nThe Shop, 12 High Street, Sometown ST1 2AB")


def documents(count: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    rows, previous = [], []
    for number in range(count):
        roll = rng.random()
        if previous and roll < 0.05:
            text = rng.choice(previous)  # an exact duplicate
        elif previous and roll < 0.10:
            words = rng.choice(previous).split()
            words[rng.randrange(len(words))] = rng.choice(VOCABULARY)  # a near duplicate
            text = " ".join(words)
        else:
            text = "\n\n".join(" ".join(rng.choices(VOCABULARY, k=rng.randint(25, 80))).capitalize() + "."
                               for _ in range(rng.randint(1, 3)))
            if roll < 0.15:
                text += f" Call me on (555) 010-{rng.randint(1000, 9999)} or write to c{number}@example.com."
            previous.append(text)
            previous = previous[-500:]
        kind = "email" if number % 3 else rng.choice(["blog", "product", "page", "other"])
        body = text + (FOOTER if kind == "email" and rng.random() < 0.6 else "")
        fmt = "html" if kind in ("blog", "product") and rng.random() < 0.5 else "text"
        if fmt == "html":
            body = "<p>" + body.replace("\n\n", "</p><p>") + "</p>"
        rows.append(Record(source=f"bench/{number // 1000}.mbox", kind=kind, title=f"Document {number}", text=body,
                           importer="bench", locator=str(number), format=fmt,
                           date=f"2024-{1 + number % 12:02d}-{1 + number % 28:02d}").to_row())
    return rows


def dataset(count: int):
    from datasets import Dataset

    return Dataset.from_list(documents(count), features=record_features())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=100_000)
    parser.add_argument("--num-proc", type=int, default=2)
    args = parser.parse_args()

    import datasets

    datasets.disable_progress_bars()
    brand = BrandKit(name="The Shop", slug="shop", sign_off="Thanks, the team")
    data = dataset(args.documents)
    start = time.perf_counter()
    result = clean(data, CleanConfig(num_proc=args.num_proc), brand=brand)
    spent = time.perf_counter() - start
    print(f"clean: {args.documents:,} documents in {spent:.1f}s = {args.documents / spent:,.0f} docs/s "
          f"({len(result.dataset):,} kept) with num_proc={args.num_proc}")
    for step in result.steps:
        print(f"  {step.step:18s} in {step.docs_in:>7,}  changed {step.changed:>7,}  dropped {step.dropped:>6,}")
    print(f"target: 100,000 documents under 120s -> {'PASS' if spent * 100_000 / args.documents < 120 else 'FAIL'}")

    only_near = CleanConfig(**{name: False for name in ("fix_unicode", "html_to_text", "strip_email",
                                                        "strip_boilerplate", "redact_pii", "filter_quality",
                                                        "filter_language", "dedupe_exact")}, num_proc=args.num_proc)
    times = {}
    for size in (10_000, 20_000, 40_000):
        subset = dataset(size)
        start = time.perf_counter()
        clean(subset, only_near)
        times[size] = time.perf_counter() - start
        print(f"near-duplicate step at {size:,} documents: {times[size]:.1f}s "
              f"({times[size] / times[10_000]:.2f}x the 10k run; linear would be {size / 10_000:.0f}x)")


if __name__ == "__main__":
    main()
