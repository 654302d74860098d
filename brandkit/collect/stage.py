"""The collect stage: walk a folder, run the registered importer on each file, save and load the records."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from ..config import BrandkitError, CollectConfig
from .base import IMPORTERS, FileContext, FileReport, Record, SkipFile, write_jsonl


@dataclass
class CollectResult:
    """The records of one collect run, and a report on every file it saw."""

    root: str
    records: list[Record]
    files: list[FileReport]

    @property
    def imported(self) -> list[FileReport]:
        return [f for f in self.files if f.status == "imported"]

    @property
    def skipped(self) -> list[FileReport]:
        return [f for f in self.files if f.status == "skipped"]

    def kind_counts(self) -> dict[str, int]:
        return dict(Counter(r.kind for r in self.records).most_common())

    def summary(self) -> str:
        kinds = ", ".join(f"{n} {k}" for k, n in self.kind_counts().items()) or "none"
        return (f"{len(self.files)} files: {len(self.imported)} imported, {len(self.skipped)} skipped; "
                f"{len(self.records)} records ({kinds})")

    def report_frame(self):
        """One row per file: importer, status, records made or the reason it was skipped."""
        import pandas as pd

        return pd.DataFrame([{"file": f.path, "importer": f.importer, "status": f.status, "records": f.records,
                              "reason": f.reason, "notes": "; ".join(f"{k}: {v}" for k, v in f.notes.items())}
                             for f in self.files])

    def to_dataset(self):
        from datasets import Dataset

        return Dataset.from_list([r.to_row() for r in self.records], features=record_features())

    def save(self, out_dir: str | Path) -> dict[str, Path]:
        """Write records.jsonl, the records as a datasets folder, and collect_report.json."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {"records_jsonl": out / "records.jsonl", "records_dataset": out / "records",
                 "report": out / "collect_report.json"}
        write_jsonl(paths["records_jsonl"], (r.to_row() for r in self.records))
        self.to_dataset().save_to_disk(str(paths["records_dataset"]))
        paths["report"].write_text(json.dumps({
            "root": self.root, "summary": self.summary(), "kinds": self.kind_counts(),
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


def import_bytes(data: bytes, source: str, config: CollectConfig,
                 depth: int = 0) -> tuple[list[Record], FileReport, list[FileReport]]:
    """Run the registered importer on one file's bytes; a failure becomes a skip with its reason.

    Returns the records, the file's report, and the reports of files inside it (archives).
    """
    report = FileReport(path=source)
    name = source.split("!")[-1]
    suffix = Path(name).suffix.lower()
    if Path(name).name.startswith(".") or "__MACOSX" in name:
        report.status, report.reason = "skipped", "hidden or system file"
        return [], report, []
    if suffix not in IMPORTERS:
        report.status, report.reason = "skipped", f"unsupported file type {suffix or '(no extension)'}"
        return [], report, []
    report.importer, func = IMPORTERS[suffix]
    ctx = FileContext(source=source, config=config, importer=report.importer, depth=depth)
    try:
        records = func(data, ctx)
    except SkipFile as exc:
        records, report.status, report.reason = [], "skipped", str(exc)
    except Exception as exc:  # a crash in one file must never sink the whole run
        records, report.status = [], "skipped"
        report.reason = f"could not be read ({type(exc).__name__}: {str(exc)[:200]})"
    if report.status == "imported" and not records and suffix != ".zip":
        report.status, report.reason = "skipped", "no documents found in the file"
    report.importer = ctx.importer
    report.records = len(records)
    report.kinds = dict(Counter(r.kind for r in records))
    report.notes = dict(ctx.notes)
    return records, report, ctx.children


def collect(source: str | Path, config: CollectConfig | None = None, progress: bool = True) -> CollectResult:
    """Import every supported file under a folder (or one file) into records."""
    config = config or CollectConfig()
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

    records: list[Record] = []
    reports: list[FileReport] = []
    limit = int(config.max_file_mb * 1024 * 1024)
    for path, shown, problem in tqdm(listing, desc="Collecting", unit="file", disable=not progress):
        if problem:
            reports.append(FileReport(path=shown, status="skipped", reason=problem))
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
        got, report, inside = import_bytes(data, shown, config)
        records.extend(got)
        reports.append(report)
        reports.extend(inside)
    return CollectResult(root=str(root), records=records, files=reports)


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
