"""The collect stage: walk a folder, run the registered importer on each file, save and load the records.

Records are held in memory up to ``collect.records_in_memory_mb``; past that they wait in a
temporary JSON-lines file, so a mailbox of several GB is imported in bounded memory.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..config import BrandKit, BrandkitError, CollectConfig
from .base import IMPORTERS, STREAM_IMPORTERS, FileContext, FileReport, Record, SkipFile, write_jsonl

RECORD_OVERHEAD = 3000  # bytes a record costs in memory besides its text (objects, fields, id): measured


class RecordList:
    """The records of a collect run, in import order: a list in memory, spilled to a temporary file when large."""

    def __init__(self, limit_mb: float = 64.0, records: Iterable[Record] = ()):
        self.limit = int(limit_mb * 1024 * 1024)
        self.kinds: Counter = Counter()
        self.importers: Counter = Counter()
        self._memory: list[Record] = []
        self._bytes = self._count = 0
        self._file: Any = None
        self.extend(records)

    @property
    def spilled(self) -> bool:
        return self._file is not None

    def append(self, record: Record) -> None:
        self._count += 1
        self.kinds[record.kind] += 1
        self.importers[record.importer] += 1
        if self._file is not None:
            self._file.write(json.dumps(record.to_row(), ensure_ascii=False) + "\n")
            return
        self._memory.append(record)
        self._bytes += len(record.text) + len(record.title) + RECORD_OVERHEAD
        if self._bytes > self.limit:
            # the folder (spill file, and the arrow cache to_dataset builds from it) goes when this list does
            self._folder = tempfile.TemporaryDirectory(prefix="brandkit-records-")
            self._file = open(Path(self._folder.name) / "records.jsonl", "w+", encoding="utf-8")
            for kept in self._memory:
                self._file.write(json.dumps(kept.to_row(), ensure_ascii=False) + "\n")
            self._memory = []

    def extend(self, records: Iterable[Record]) -> None:
        for record in records:
            self.append(record)

    def __len__(self) -> int:
        return self._count

    def __bool__(self) -> bool:
        return self._count > 0

    def rows(self) -> Iterator[dict[str, Any]]:
        """Each record as a row (to_row), read back from disk when spilled."""
        if self._file is None:
            yield from (r.to_row() for r in self._memory)
            return
        self._file.flush()
        with open(self._file.name, encoding="utf-8") as handle:
            for line in handle:
                yield json.loads(line)

    def __iter__(self) -> Iterator[Record]:
        if self._file is None:
            return iter(list(self._memory))
        return (Record.from_row(row) for row in self.rows())

    def __getitem__(self, index):
        if self._file is None:
            return self._memory[index]
        return list(self)[index]

    def cache_dir(self) -> str | None:
        return str(Path(self._folder.name) / "cache") if self._file is not None else None

    def path(self) -> str | None:
        """The spill file (flushed), or None while the records are in memory."""
        if self._file is None:
            return None
        self._file.flush()
        return self._file.name


@dataclass
class CollectResult:
    """The records of one collect run, and a report on every file it saw."""

    root: str
    records: RecordList | list[Record]
    files: list[FileReport]

    @property
    def imported(self) -> list[FileReport]:
        return [f for f in self.files if f.status == "imported"]

    @property
    def skipped(self) -> list[FileReport]:
        return [f for f in self.files if f.status == "skipped"]

    def kind_counts(self) -> dict[str, int]:
        counts = self.records.kinds if isinstance(self.records, RecordList) else Counter(r.kind for r in self.records)
        return dict(counts.most_common())

    @property
    def set_aside(self) -> int:
        """Received messages left out because the brand did not send them."""
        from .mail import RECEIVED_NOTE

        return sum(f.notes.get(RECEIVED_NOTE, 0) for f in self.files)

    def summary(self) -> str:
        kinds = ", ".join(f"{n} {k}" for k, n in self.kind_counts().items()) or "none"
        aside = f"; {self.set_aside} received messages set aside" if self.set_aside else ""
        return (f"{len(self.files)} files: {len(self.imported)} imported, {len(self.skipped)} skipped; "
                f"{len(self.records)} records ({kinds}){aside}")

    def report_frame(self):
        """One row per file: importer, status, records made or the reason it was skipped."""
        import pandas as pd

        return pd.DataFrame([{"file": f.path, "importer": f.importer, "status": f.status, "records": f.records,
                              "reason": f.reason, "notes": "; ".join(f"{k}: {v}" for k, v in f.notes.items())}
                             for f in self.files])

    def to_dataset(self):
        from datasets import Dataset

        spill = self.records.path() if isinstance(self.records, RecordList) else None
        if spill:  # arrow is written a batch at a time from the spill file: bounded memory
            return Dataset.from_json(spill, features=record_features(), cache_dir=self.records.cache_dir())
        return Dataset.from_list([r.to_row() for r in self.records], features=record_features())

    def save(self, out_dir: str | Path) -> dict[str, Path]:
        """Write records.jsonl, the records as a datasets folder, and collect_report.json."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {"records_jsonl": out / "records.jsonl", "records_dataset": out / "records",
                 "report": out / "collect_report.json"}
        rows = self.records.rows() if isinstance(self.records, RecordList) else (r.to_row() for r in self.records)
        write_jsonl(paths["records_jsonl"], rows)
        self.to_dataset().save_to_disk(str(paths["records_dataset"]))
        paths["report"].write_text(json.dumps({
            "root": self.root, "summary": self.summary(), "kinds": self.kind_counts(), "set_aside": self.set_aside,
            "files": [asdict(f) for f in self.files]}, indent=2, ensure_ascii=False), encoding="utf-8")
        return paths


def record_features():
    from datasets import Features, List, Value

    turn = {"role": Value("string"), "author": Value("string"), "time": Value("string"), "text": Value("string")}
    return Features({
        "source": Value("string"), "kind": Value("string"), "title": Value("string"), "text": Value("string"),
        "importer": Value("string"), "locator": Value("string"), "format": Value("string"),
        "turns": List(turn), "date": Value("string"), "author": Value("string"), "tags": List(Value("string")),
        "extra": Value("string"), "id": Value("string")})


def iter_files(root: Path) -> Iterable[tuple[Path, str, str]]:
    """(path, shown name, skip reason or "") for every file under root; symlinks followed once."""
    seen_dirs = {root.resolve()}
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            yield folder, _shown(folder, root), f"folder cannot be read: {exc.strerror or exc}"
            continue
        for entry in entries:
            path = Path(entry.path)
            shown = _shown(path, root)
            try:
                is_dir = entry.is_dir()
                if entry.is_symlink():
                    target = path.resolve(strict=True)
                    if is_dir and target in seen_dirs:
                        yield path, shown, "symlink loop: points back to a folder already walked"
                        continue
            except (OSError, RuntimeError):
                yield path, shown, "broken symlink or symlink loop"
                continue
            if is_dir:
                seen_dirs.add(path.resolve())
                stack.append(path)
            else:
                yield path, shown, ""
        stack.sort(reverse=True)


def _shown(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def unimportable(name: str, suffixes) -> str:
    """Why a file is not for any importer in suffixes, or ""."""
    suffix = Path(name).suffix.lower()
    if Path(name).name.startswith(".") or "__MACOSX" in name:
        return "hidden or system file"
    if suffix not in suffixes:
        return f"unsupported file type {suffix or '(no extension)'}"
    return ""


def import_bytes(data: bytes, source: str, config: CollectConfig, depth: int = 0,
                 senders: tuple[str, ...] = ()) -> tuple[list[Record], FileReport, list[FileReport]]:
    """Run the registered importer on one file's bytes; a failure becomes a skip with its reason.

    Returns the records, the file's report, and the reports of files inside it (archives).
    """
    report = FileReport(path=source)
    name = source.split("!")[-1]
    report.reason = unimportable(name, IMPORTERS)
    if report.reason:
        report.status = "skipped"
        return [], report, []
    report.importer, func = IMPORTERS[Path(name).suffix.lower()]
    ctx = FileContext(source=source, config=config, importer=report.importer, depth=depth, senders=senders)
    records = run_importer(lambda: func(data, ctx), report, ctx, Path(name).suffix.lower() != ".zip")
    return records, report, ctx.children


def run_importer(make, report: FileReport, ctx: FileContext, empty_is_skip: bool = True,
                 into: RecordList | None = None) -> list[Record]:
    """Call an importer (make() returns its records, a list or a stream) and fill in the file's report."""
    records = into if into is not None else []
    count = len(records)
    kinds: Counter = Counter()
    try:
        for record in make():
            records.append(record)
            kinds[record.kind] += 1
    except SkipFile as exc:
        report.status, report.reason = "skipped", str(exc)
    except Exception as exc:  # a crash in one file must never sink the whole run
        report.status = "skipped"
        report.reason = f"could not be read ({type(exc).__name__}: {str(exc)[:200]})"
    made = len(records) - count
    if report.status == "skipped" and into is None:
        records, made, kinds = [], 0, Counter()
    elif report.status == "skipped" and made:  # a stream broke off: what it gave is kept, and said
        report.status, report.reason = "imported", f"stopped after {made} records: {report.reason}"
    if report.status == "imported" and not made and empty_is_skip:
        report.status, report.reason = "skipped", "no documents found in the file"
        if ctx.notes.get("received messages skipped (not sent by the brand)"):
            report.reason = "no documents found in the file: every message was received mail, not the brand's"
    report.importer = ctx.importer
    report.records = made
    report.kinds = dict(kinds)
    report.notes = dict(ctx.notes)
    report.skipped_items = list(ctx.skipped_items)
    return records


def brand_senders(brand: BrandKit | None) -> tuple[str, ...]:
    """The addresses and @domains the brand sends mail from (the brand kit's sends_from)."""
    return tuple(a.strip() for a in (brand.sends_from if brand else []) or [] if a and a.strip())


def collect(source: str | Path, config: CollectConfig | None = None, progress: bool = True,
            brand: BrandKit | None = None) -> CollectResult:
    """Import every supported file under a folder (or one file) into records.

    brand: the brand kit, whose sends_from addresses tell the brand's own mail from received mail.
    """
    config = config or CollectConfig()
    if config.mail_messages not in ("sent", "all"):
        raise BrandkitError(f"collect.mail_messages must be 'sent' or 'all', not {config.mail_messages!r}")
    senders = brand_senders(brand)
    root = Path(source)
    if not root.exists():
        raise BrandkitError(f"source folder not found: {root}")
    if root.is_file():
        listing = [(root, root.name, "")]
        root = root.parent
    else:
        listing = list(iter_files(root))
    if not listing:
        raise BrandkitError(f"source folder is empty: {root}")
    from tqdm.auto import tqdm

    records = RecordList(config.records_in_memory_mb)
    reports: list[FileReport] = []
    limit = int(config.max_file_mb * 1024 * 1024)
    for path, shown, problem in tqdm(listing, desc="Collecting", unit="file", disable=not progress):
        if problem:
            reports.append(FileReport(path=shown, status="skipped", reason=problem))
            continue
        if path.suffix.lower() in STREAM_IMPORTERS and not unimportable(path.name, STREAM_IMPORTERS):
            reports.append(import_stream(path, shown, config, senders, records))
            continue
        try:
            size = path.stat().st_size
            if size > limit:
                reports.append(FileReport(path=shown, status="skipped",
                                          reason=f"too large: {size / 1e6:.1f} MB (limit {config.max_file_mb} MB)"))
                continue
            with open(path, "rb") as handle:  # read-only: originals are never modified
                data = handle.read()
        except OSError as exc:
            reports.append(FileReport(path=shown, status="skipped", reason=f"cannot be read: {exc.strerror or exc}"))
            continue
        got, report, inside = import_bytes(data, shown, config, senders=senders)
        records.extend(got)
        reports.append(report)
        reports.extend(inside)
    return CollectResult(root=str(root), records=records, files=reports)


def import_stream(path: Path, shown: str, config: CollectConfig, senders: tuple[str, ...],
                  records: RecordList) -> FileReport:
    """Run a stream importer on a file opened for reading (no size limit: it is never read whole)."""
    report = FileReport(path=shown)
    report.importer, func = STREAM_IMPORTERS[path.suffix.lower()]
    ctx = FileContext(source=shown, config=config, importer=report.importer, senders=senders)
    try:
        with open(path, "rb") as handle:  # read-only: originals are never modified
            run_importer(lambda: func(handle, ctx), report, ctx, into=records)
    except OSError as exc:
        report.status, report.reason = "skipped", f"cannot be read: {exc.strerror or exc}"
    return report


def load_records(path: str | Path):
    """The records a collect run saved (a datasets folder or records.jsonl)."""
    from datasets import Dataset, load_from_disk

    path = Path(path)
    if path.is_dir() and (path / "records").is_dir():
        path = path / "records"
    if path.is_dir():
        return load_from_disk(str(path))
    if path.suffix == ".jsonl" and path.is_file():
        return Dataset.from_json(str(path), features=record_features())
    raise BrandkitError(f"no collected records at {path}")
