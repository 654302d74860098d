"""Collect benchmark for a large mailbox: a generated 2 GB mbox imported in bounded memory, in linear time.

    python benchmarks/bench_collect_large_mbox.py [--gb 2] [--baseline-mb 128]

Gmail Takeout's "All mail" often runs to several GB. This writes an mbox of the given size from a
Takeout-like mix (six in ten newsletters with an HTML part, replies, and one in seven messages with
a 100-600 KB attachment: about 60 KB a message on average; one in ten sent by a customer, which
collect sets aside), then runs the collect stage on it as the pipeline
does (the brand's sent mail only, then records.jsonl and the datasets folder written), first on a
small mbox as the baseline in the same process, then on the large one. Prints time (wall and CPU)
and peak memory (resident set size, sampled) for each, and the ratio of CPU time per MB large /
baseline: about 1.0 means time grows linearly with size. Targets: peak memory under 1 GB, the ratio under
1.5, and the whole script well within 15 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from brandkit.config import BrandKit, CollectConfig  # noqa: E402

BRAND = BrandKit(name="The Shop", slug="shop", sends_from=["hello@shop.example.com"])
POOL = 600
WORDS = ("our new season coffee is here and we think you will love it roasted fresh every week in small "
         "batches with care for the farmers who grow it come and taste it in the shop this weekend").split()


def takeout_message(number: int, rng: random.Random) -> bytes:
    """A message as Takeout holds them: mostly newsletters with an HTML part, some replies, some attachments."""
    msg = EmailMessage()
    customer = number % 10 == 9  # one in ten is a customer's message, as in "All mail"
    msg["From"] = "A Customer <c@customer.example.net>" if customer else "The Shop <hello@shop.example.com>"
    msg["To"] = "c@customer.example.net" if not customer else "The Shop <hello@shop.example.com>"
    msg["Subject"] = f"Message {number}: " + " ".join(rng.sample(WORDS, 4))
    msg["Date"] = format_datetime(datetime(2024, 1, 1) + timedelta(hours=number))
    msg["Message-ID"] = f"<{number}@shop.example.com>"
    roll = rng.random()
    paragraphs = rng.randint(8, 24) if roll < 0.6 else rng.randint(2, 5)
    body = "\n\n".join(" ".join(rng.choices(WORDS, k=rng.randint(30, 60))).capitalize() + "."
                       for _ in range(paragraphs))
    msg.set_content(body, cte="quoted-printable" if number % 2 else "base64")
    if roll < 0.6:  # a newsletter: the HTML version too
        html = "".join(f'<p style="font-family:Georgia;color:#333">{p}</p>' for p in body.split("\n\n"))
        msg.add_alternative(f"<html><body><table><tr><td>{html}</td></tr></table></body></html>", subtype="html")
    elif roll > 0.85:  # a reply with a photo or an invoice attached
        msg.add_attachment(rng.randbytes(rng.randint(100_000, 600_000)), maintype="application", subtype="pdf",
                           filename=f"invoice-{number}.pdf")
    return msg.as_bytes()


def write_mbox(path: Path, size_mb: float) -> tuple[int, int]:
    """An mbox of about size_mb MB from a pool of distinct messages; (messages, of which received)."""
    rng = random.Random(0)
    pool = [b"From hello@shop.example.com Mon Jan  1 00:00:00 2024\n"
            + takeout_message(number, rng).replace(b"\nFrom ", b"\n>From ") + b"\n" for number in range(POOL)]
    target, written, count, received = int(size_mb * 1e6), 0, 0, 0
    with open(path, "wb") as handle:
        while written < target:
            chunk = pool[count % POOL]
            handle.write(chunk)
            written += len(chunk)
            received += count % POOL % 10 == 9
            count += 1
    return count, received


class PeakMemory:
    """The process's peak resident set size while the block runs, sampled every 50 ms from /proc."""

    def __enter__(self):
        self.peak, self._stop = 0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        page = os.sysconf("SC_PAGE_SIZE")
        while not self._stop.is_set():
            with open("/proc/self/statm") as handle:
                self.peak = max(self.peak, int(handle.read().split()[1]) * page)
            self._stop.wait(0.05)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def run(path: Path, out: Path) -> dict:
    from brandkit.collect import collect

    with PeakMemory() as memory:
        start, cpu = time.perf_counter(), time.process_time()
        result = collect(path.parent, CollectConfig(), progress=False, brand=BRAND)
        collected = time.perf_counter() - start
        result.save(out)
        total, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {"records": len(result.records), "set_aside": result.set_aside, "collect": collected, "total": total,
            "cpu": cpu, "peak_mb": memory.peak / 2**20, "spilled": result.records.spilled}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gb", type=float, default=2.0)
    parser.add_argument("--baseline-mb", type=float, default=128.0)
    parser.add_argument("--folder", default=None, help="where to write the mailboxes (default: a temporary folder)")
    args = parser.parse_args()
    import datasets

    datasets.disable_progress_bars()
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=args.folder) as folder:
        rows = {}
        for label, size_mb in (("baseline", args.baseline_mb), ("large", args.gb * 1000)):
            path = Path(folder) / label / "Takeout" / "All mail Including Spam and Trash.mbox"
            path.parent.mkdir(parents=True)
            start = time.perf_counter()
            messages, received = write_mbox(path, size_mb)
            written = time.perf_counter() - start
            size = path.stat().st_size / 1e6
            figures = run(path, Path(folder) / label / "out")
            rows[label] = {**figures, "size": size, "messages": messages}
            assert figures["records"] == messages - received and figures["set_aside"] == received, figures
            print(f"{label:8s} {size:8,.0f} MB, {messages:,} messages (written in {written:.0f}s): "
                  f"{figures['records']:,} records, {figures['set_aside']:,} received set aside; collect "
                  f"{figures['collect']:.1f}s, with the saved records {figures['total']:.1f}s = "
                  f"{size / figures['total']:.1f} MB/s ({figures['cpu']:.1f}s of CPU); peak memory "
                  f"{figures['peak_mb']:,.0f} MB"
                  f"{' (records spilled to disk)' if figures['spilled'] else ''}")
            for item in (Path(folder) / label).rglob("*"):
                if item.is_file():
                    item.unlink()  # room for the next run
    base, large = rows["baseline"], rows["large"]
    # CPU seconds, not wall time: on a shared machine the wall clock says more about the neighbours
    ratio = (large["cpu"] / large["size"]) / (base["cpu"] / base["size"])
    wall = (large["total"] / large["size"]) / (base["total"] / base["size"])
    print(f"CPU time per MB, large / baseline: {ratio:.2f}x (1.0 = linear in size; wall clock {wall:.2f}x)")
    peak_ok, ratio_ok = large["peak_mb"] < 1024, ratio < 1.5
    print(f"targets: peak memory under 1 GB -> {'PASS' if peak_ok else 'FAIL'} ({large['peak_mb']:,.0f} MB); "
          f"linear time (ratio under 1.5) -> {'PASS' if ratio_ok else 'FAIL'}; "
          f"whole script {time.perf_counter() - began:.0f}s")


if __name__ == "__main__":
    main()
