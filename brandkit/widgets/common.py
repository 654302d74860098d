"""Widget basics shared by every notebook widget: ipywidgets, the stylesheet, escaping.

Built from the ipywidgets core that is the same in 7.7.1 (Colab) and 8.x (JupyterLab): HTML,
Button, Text, Textarea, ToggleButtons, Dropdown, sliders, FileUpload, Output, HBox and VBox. Every
element a test or a person needs to find carries a `bk-...` CSS class.
"""

from __future__ import annotations

import html
from typing import Any

CSS = """<style>
.bk-out{white-space:pre-wrap;border:1px solid #ddd;border-radius:6px;padding:8px;background:#fafafa;
min-height:80px;font-size:13px;line-height:1.4}
.bk-badge{display:inline-block;border-radius:10px;padding:1px 8px;margin:2px;font-size:12px;background:#eef}
.bk-badge.good{background:#dff3e4}.bk-badge.bad{background:#fde2e2}
.bk-prompt{font-size:14px;margin:4px 0}.bk-muted{color:#777;font-size:12px}
ins{background:#dff3e4;text-decoration:none}del{background:#fde2e2}
.bk-edit textarea{font-size:13px;line-height:1.4}
.bk-play-out{white-space:pre-wrap;border:1px solid #ddd;border-radius:6px;padding:8px;min-height:60px;font-size:13px}
</style>"""


def _ipw():
    import ipywidgets

    return ipywidgets


def _major() -> int:
    return int(_ipw().__version__.split(".")[0])


def esc(text: Any) -> str:
    return html.escape(str(text))


class Displayable:
    """Shows its `widget` when it is the last value of a cell."""

    widget: Any

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)
