"""Collect: turn the files a shop owner hands over into one uniform set of records.

Every file is accounted for: it is either imported (and says how many records it made) or skipped
with a reason. Originals are only ever opened for reading. Importers are small functions, one per
format, registered with ``@importer`` (see ``base``); each family of formats has its own module in
this folder (``mail``, ``documents``, ``tables``, ...), and every module here other than ``base`` and
``stage`` is imported below, so a new format is one new file. ``stage`` walks the folder and runs them.
"""

from __future__ import annotations

import importlib
import pkgutil

from .base import (
    IMPORTERS,
    KINDS,
    STREAM_IMPORTERS,
    FileContext,
    FileReport,
    Importer,
    Record,
    SkipFile,
    decode_text,
    guess_kind,
    html_to_text,
    importer,
    looks_like_html,
    render_turns,
    write_jsonl,
)
from .stage import (
    CollectResult,
    RecordList,
    collect,
    import_bytes,
    iter_files,
    load_records,
    record_features,
)

__all__ = [
    "IMPORTERS", "KINDS", "STREAM_IMPORTERS", "CollectResult", "RecordList", "FileContext", "FileReport", "Importer", "Record", "SkipFile",
    "collect", "decode_text", "guess_kind", "html_to_text", "import_bytes", "importer", "iter_files",
    "load_records", "looks_like_html", "record_features", "render_turns", "write_jsonl",
]

# Importing a family module registers its importers in IMPORTERS.
for _family in pkgutil.iter_modules(__path__):
    if _family.name not in ("base", "stage"):
        importlib.import_module(f"{__name__}.{_family.name}")
