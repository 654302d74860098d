"""Archives: every member of a zip file, imported and reported as a file of its own."""

from __future__ import annotations

import io

from .base import FileContext, FileReport, Record, SkipFile, importer
from .stage import import_bytes

MAX_ARCHIVE_DEPTH = 2


@importer(".zip", name="zip")
def import_zip(data: bytes, ctx: FileContext) -> list[Record]:
    """Every member of a zip archive, each reported as a file of its own (a.zip!folder/file.txt)."""
    import zipfile

    if ctx.depth >= MAX_ARCHIVE_DEPTH:
        raise SkipFile(f"archive nested more than {MAX_ARCHIVE_DEPTH} deep")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = [m for m in archive.infolist() if not m.is_dir()]
    except (zipfile.BadZipFile, OSError) as exc:
        raise SkipFile(f"corrupt zip archive: {exc}") from None
    limit = int(ctx.config.max_file_mb * 1024 * 1024)
    records = []
    for member in members:
        shown = f"{ctx.source}!{member.filename}"
        if member.file_size > limit:
            ctx.children.append(FileReport(path=shown, status="skipped", reason=(
                f"too large: {member.file_size / 1e6:.1f} MB (limit {ctx.config.max_file_mb} MB)")))
            continue
        try:
            content = archive.read(member)
        except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError) as exc:
            ctx.children.append(FileReport(path=shown, status="skipped", reason=f"cannot be extracted: {exc}"))
            continue
        got, report, children = import_bytes(content, shown, ctx.config, depth=ctx.depth + 1, senders=ctx.senders)
        records.extend(got)
        ctx.children.extend([report, *children])
    ctx.notes["files inside"] = len(members)
    if not members:
        raise SkipFile("empty zip archive")
    if not records:
        ctx.notes["no member could be imported"] += 1
    return records
