"""Figures and HTML pieces every stage's report shares: escaping, tables, and matplotlib figures as PNG data URIs."""

from __future__ import annotations

import base64
import html
import io
from typing import Any


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def figure_to_data_uri(figure) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def shown_once(figure):
    """The figure, closed in pyplot and returned: a notebook shows it once, as the cell's value.

    matplotlib's inline backend draws every figure still open at the end of a cell, so an open
    figure returned as the cell's value would be drawn twice.
    """
    import matplotlib.pyplot as plt

    plt.close(figure)
    return figure


def img(figure, alt: str) -> str:
    return f'<img alt="{esc(alt)}" src="{figure_to_data_uri(figure)}">'


def table(rows: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    if not rows:
        return '<p class="muted">nothing to show</p>'
    columns = columns or list(rows[0])
    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{esc(_fmt(r.get(c, '')))}</td>" for c in columns) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def loss_figure(log_history: list[dict[str, Any]]):
    """Training and validation loss per step.

    It leaves matplotlib's backend alone: switching to Agg here (as it once did) turned a notebook's
    inline figures, the live loss plot's included, into "<Figure size ...>" text.
    """
    import matplotlib.pyplot as plt

    train = [(h["step"], h["loss"]) for h in log_history if "loss" in h and "step" in h]
    val = [(h["step"], h["eval_loss"]) for h in log_history if "eval_loss" in h]
    figure, axis = plt.subplots(figsize=(6.5, 3.2))
    if train:
        axis.plot(*zip(*train, strict=True), label="training loss", color="#3b6fb6")
    if val:
        axis.plot(*zip(*val, strict=True), "o-", label="validation loss", color="#d2691e")
    axis.set_xlabel("step")
    axis.set_ylabel("loss")
    axis.grid(alpha=0.3)
    axis.legend()
    return shown_once(figure)


def collect_figure(result):
    """Records by kind, and by the importer (source format) that made them."""
    import matplotlib.pyplot as plt
    from collections import Counter

    figure, (by_kind, by_source) = plt.subplots(1, 2, figsize=(9, 3.2))
    for axis, counts, title in ((by_kind, Counter(r.kind for r in result.records), "records by kind"),
                                (by_source, Counter(r.importer for r in result.records), "records by source format")):
        names = [name for name, _ in counts.most_common()]
        axis.barh(names, [counts[n] for n in names], color="#3b6fb6")
        axis.invert_yaxis()
        axis.set_title(title)
        axis.grid(alpha=0.3, axis="x")
    figure.tight_layout()
    return shown_once(figure)
