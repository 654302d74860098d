"""Data widgets: upload files in the collect notebook, page through the clean stage's diffs."""

from __future__ import annotations

import difflib
from pathlib import Path

from .common import CSS, Displayable, _ipw, esc


def upload_widget(target: str | Path):
    """A file-upload button that saves the chosen files into `target` (copies; originals untouched)."""
    ipw = _ipw()
    target = Path(target)
    upload = ipw.FileUpload(multiple=True, description="Choose files")
    status = ipw.HTML("<span class='bk-muted'>Files you choose are copied into " + esc(target) + "</span>")

    def saved_files(value) -> list[tuple[str, bytes]]:
        # ipywidgets 8: a tuple of dicts with a memoryview; 7.x: a dict of name -> {"content": bytes}
        if isinstance(value, dict):
            return [(name, bytes(item["content"])) for name, item in value.items()]
        return [(item["name"], bytes(item["content"])) for item in value]

    def on_change(change):
        files = saved_files(change["new"])
        if not files:
            return
        target.mkdir(parents=True, exist_ok=True)
        for name, content in files:
            (target / Path(name).name).write_bytes(content)
        status.value = f"Saved {len(files)} file(s) to {esc(target)}: " + ", ".join(esc(n) for n, _ in files)

    upload.observe(on_change, names="value")
    return ipw.VBox([upload, status])


# --------------------------------------------------------------------------- clean: diffs

def inline_diff(before: str, after: str) -> str:
    """HTML of after, with removed text struck through and added text highlighted."""
    out = []
    matcher = difflib.SequenceMatcher(None, before, after, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            out.append(esc(after[j1:j2]))
        if tag in ("delete", "replace"):
            out.append(f"<del>{esc(before[i1:i2])}</del>")
        if tag in ("insert", "replace"):
            out.append(f"<ins>{esc(after[j1:j2])}</ins>")
    return "".join(out)


class DiffPager(Displayable):
    """Page through every document the clean stage changed or dropped: reasons and a diff."""

    def __init__(self, records, result):
        ipw = _ipw()
        before = {r["id"]: r for r in records}
        after = {r["id"]: r for r in result.dataset}
        reasons: dict[str, list[str]] = {}
        for entry in result.audit:
            reasons.setdefault(entry["id"], []).append(f"{entry['step']}: {entry['reason']}")
        self.items = [(doc_id, before[doc_id], after.get(doc_id), reasons[doc_id]) for doc_id in reasons
                      if doc_id in before]
        self.index = 0
        self.view = ipw.HTML()
        self.position = ipw.HTML()
        self.previous = ipw.Button(description="◀ Previous")
        self.next = ipw.Button(description="Next ▶")
        self.previous.on_click(lambda _: self.show(self.index - 1))
        self.next.on_click(lambda _: self.show(self.index + 1))
        self.widget = ipw.VBox([ipw.HTML(CSS), ipw.HBox([self.previous, self.next, self.position]), self.view])
        self.show(0)

    def show(self, index: int) -> None:
        if not self.items:
            self.view.value = "<p>Nothing was changed or dropped.</p>"
            return
        self.index = index % len(self.items)
        doc_id, before, after, reasons = self.items[self.index]
        self.position.value = f"<span class='bk-muted'>{self.index + 1} / {len(self.items)}</span>"
        head = (f"<p><b>{esc(before['title'] or before['source'])}</b> <span class='bk-muted'>{esc(before['kind'])}"
                f" · {esc(before['source'])} {esc(before['locator'])}</span></p><ul>"
                + "".join(f"<li>{esc(r)}</li>" for r in reasons) + "</ul>")
        body = inline_diff(before["text"], after["text"]) if after else f"<del>{esc(before['text'])}</del>"
        self.view.value = head + f"<div class='bk-out'>{body}</div>"

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)
