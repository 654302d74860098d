"""Collect benchmark: import a generated mbox of 10,000 messages.

    python benchmarks/bench_collect_mbox.py [--messages 10000]

Prints messages per second for brandkit's mbox importer, and the ratio against a baseline run in
the same process on the same file: the standard library's mailbox.mbox, walking each message and
decoding its text parts (what a hand-written importer would do). Target: 10,000 messages in under
30 seconds on 2 cores.
"""

from __future__ import annotations

import argparse
import mailbox
import random
import sys
import tempfile
import time
from email.message import EmailMessage
from email.utils import format_datetime
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from brandkit.collect import collect  # noqa: E402

WORDS = ("our new season coffee is here and we think you will love it roasted fresh every week in small "
         "batches with care for the farmers who grow it come and taste it in the shop this weekend").split()


def message(number: int, rng: random.Random) -> bytes:
    msg = EmailMessage()
    msg["From"] = "The Shop <hello@shop.example.com>"
    msg["To"] = f"customer{number}@example.com"
    msg["Subject"] = f"Newsletter {number}: " + " ".join(rng.sample(WORDS, 4))
    msg["Date"] = format_datetime(datetime(2024, 1, 1) + timedelta(hours=number))
    msg["Message-ID"] = f"<{number}@shop.example.com>"
    body = "\n\n".join(" ".join(rng.choices(WORDS, k=rng.randint(30, 90))).capitalize() + "."
                       for _ in range(rng.randint(2, 5)))
    kind = number % 4
    msg.set_content(body, cte="base64" if kind == 1 else "quoted-printable")
    if kind == 2:
        msg.add_alternative(f"<html><body><p>{body}</p></body></html>", subtype="html")
    if kind == 3:
        msg.add_attachment(b"%PDF-1.4 x" * 50, maintype="application", subtype="pdf", filename="a.pdf")
    return msg.as_bytes()


def write_mbox(path: Path, count: int) -> None:
    rng = random.Random(0)
    with open(path, "wb") as handle:
        for number in range(count):
            handle.write(b"From hello@shop.example.com Mon Jan  1 00:00:00 2024\n")
            handle.write(message(number, rng).replace(b"\nFrom ", b"\n>From ") + b"\n")


def baseline(path: Path) -> int:
    """The standard library way: mailbox.mbox, walk, decode text parts."""
    count = 0
    for msg in mailbox.mbox(str(path), create=False):
        text = None
        for part in msg.walk():
            if part.get_content_type() == "text/plain" and not part.get_filename():
                payload = part.get_payload(decode=True) or b""
                text = payload.decode(part.get_content_charset() or "utf-8", errors="replace")
                break
        count += bool(text)
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "exports" / "All mail.mbox"
        path.parent.mkdir()
        write_mbox(path, args.messages)
        size = path.stat().st_size / 1e6
        start = time.perf_counter()
        base_count = baseline(path)
        base_time = time.perf_counter() - start
        start = time.perf_counter()
        result = collect(path.parent, progress=False)
        ours_time = time.perf_counter() - start
    ours = len(result.records)
    print(f"mbox: {args.messages} messages, {size:.1f} MB")
    print(f"baseline (stdlib mailbox.mbox): {base_count} messages in {base_time:.1f}s = {base_count / base_time:,.0f} msg/s")
    print(f"brandkit collect:               {ours} records in {ours_time:.1f}s = {ours / ours_time:,.0f} msg/s")
    print(f"ratio brandkit / baseline: {base_time / ours_time:.2f}x the baseline's speed")
    target = 30.0 * args.messages / 10_000
    print(f"target: under {target:.0f}s -> {'PASS' if ours_time < target else 'FAIL'} ({ours_time:.1f}s)")


if __name__ == "__main__":
    main()
