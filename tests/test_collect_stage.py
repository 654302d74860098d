"""The collect stage: every file is imported or skipped with a reason, originals stay untouched, records round-trip."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from brandkit.collect import IMPORTERS, collect, import_bytes, load_records
from brandkit.config import BrandkitError, CollectConfig


def test_every_file_is_imported_or_skipped_with_a_reason(fixture_dir):
    result = collect(fixture_dir, progress=False)
    walked = sorted(p.relative_to(fixture_dir).as_posix() for p in fixture_dir.rglob("*") if p.is_file())
    reported = sorted(f.path for f in result.files if "!" not in f.path)
    assert reported == walked
    assert len(result.files) == len(result.imported) + len(result.skipped)
    assert all(f.reason for f in result.skipped)
    assert all(f.records > 0 or f.importer == "zip" for f in result.imported)


def test_bad_inputs_are_skipped_with_their_reasons(fixture_dir):
    files = {f.path: f for f in collect(fixture_dir, progress=False).files}
    expected = {
        "bad/corrupt.docx": "not a valid .docx",
        "bad/corrupt.pdf": "corrupt PDF",
        "bad/corrupt.zip": "corrupt zip",
        "bad/binary.txt": "binary",
        "bad/empty.txt": "empty file",
        "bad/nocolumn.csv": "no text column among the columns: id, price",
        "bad/malformed.xml": "malformed XML",
        "bad/allbad.jsonl": "no valid JSON line",
        "bad/notes.yaml": "unsupported file type .yaml",
        "archive.zip!inner/logo.png": "unsupported file type .png",
    }
    for path, reason in expected.items():
        assert files[path].status == "skipped", path
        assert reason in files[path].reason, (path, files[path].reason)


def test_size_limit_and_symlink_loop(tmp_path):
    root = tmp_path / "in"
    (root / "sub").mkdir(parents=True)
    (root / "big.txt").write_text("word " * 300_000)
    (root / "ok.txt").write_text("A perfectly ordinary little text file with a few words.")
    os.symlink(root, root / "sub" / "loop")
    result = collect(root, CollectConfig(max_file_mb=1), progress=False)
    files = {f.path: f for f in result.files}
    assert files["big.txt"].status == "skipped" and "too large" in files["big.txt"].reason
    assert "symlink loop" in files["sub/loop"].reason
    assert files["ok.txt"].status == "imported"


def test_originals_are_never_modified(fixture_dir, tmp_path):
    def snapshot():
        return {p: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
                for p in sorted(fixture_dir.rglob("*")) if p.is_file()}

    before = snapshot()
    for path in fixture_dir.rglob("*"):
        if path.is_file():
            path.chmod(0o444)  # read-only: any attempt to open for writing would fail the import
    result = collect(fixture_dir, progress=False)
    result.save(tmp_path / "out")
    assert snapshot() == before
    assert len(result.records) > 20


def test_saved_records_round_trip(fixture_dir, tmp_path):
    result = collect(fixture_dir, progress=False)
    paths = result.save(tmp_path / "collect")
    assert json.loads(paths["report"].read_text())["summary"] == result.summary()
    dataset = load_records(tmp_path / "collect")
    assert len(dataset) == len(result.records)
    from_jsonl = load_records(paths["records_jsonl"])
    assert from_jsonl[0]["id"] == dataset[0]["id"]
    chat = next(r for r in dataset if r["kind"] == "chat")
    assert chat["turns"][0]["role"] == "customer"


def test_missing_and_empty_folders_are_clear_errors(tmp_path):
    with pytest.raises(BrandkitError, match="not found"):
        collect(tmp_path / "nope", progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(BrandkitError, match="empty"):
        collect(tmp_path / "empty", progress=False)


def test_a_crashing_importer_only_skips_its_file(monkeypatch):
    def explode(data, ctx):
        raise RuntimeError("boom")

    monkeypatch.setitem(IMPORTERS, ".txt", ("text", explode))
    records, report, _ = import_bytes(b"hello", "a.txt", CollectConfig())
    assert records == [] and report.status == "skipped" and "RuntimeError: boom" in report.reason
