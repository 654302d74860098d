"""Report: one self-contained HTML file to share: the brand, the data, the training, the verdict.

Everything that came from data or models is escaped; plots are embedded as PNG data URIs, so the
file opens anywhere, offline, and no document can run a script in it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .config import BrandKit
from .figures import esc, img, loss_figure, table

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}
h1{margin-bottom:.2em}h2{border-bottom:2px solid #eee;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ddd;padding:.35em .6em;text-align:left;
vertical-align:top}th{background:#f6f6f6}.muted{color:#777}.pair{display:grid;grid-template-columns:1fr 1fr;
gap:1em}.out{white-space:pre-wrap;background:#fafafa;border:1px solid #eee;border-radius:6px;padding:.6em}
.item{border:1px solid #e5e5e5;border-radius:8px;padding:.8em;margin:1em 0}.tag{display:inline-block;
background:#eef;border-radius:4px;padding:0 .4em;margin-right:.3em;font-size:.85em}.good{color:#176a2c}
.bad{color:#a12}.note{background:#fff8e1;border-left:4px solid #f0c040;padding:.5em .8em}
img{max-width:100%}
"""


def style_figure(per_generation, reference):
    """Distribution of the brand-style score for base, tuned and the brand's own texts."""
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6.5, 3.2))
    groups = [("base", per_generation[per_generation["model"] == "base"]["style_score"]),
              ("tuned", per_generation[per_generation["model"] == "tuned"]["style_score"]),
              ("brand's own", reference["style_score"])]
    groups = [(name, values) for name, values in groups if len(values)]
    axis.boxplot([list(v) for _, v in groups], vert=False)
    axis.set_yticks(range(1, len(groups) + 1), [name for name, _ in groups])
    axis.set_xlim(0, 1)
    axis.set_xlabel("brand-style score (probability the text is the brand's)")
    axis.grid(alpha=0.3)
    return figure


def stylometrics_figure(summary_rows: list[dict[str, Any]]):
    """Each habit as base / tuned / brand reference, scaled to the brand's value."""
    import matplotlib.pyplot as plt

    rows = [r for r in summary_rows if r["measure"] not in ("style_score", "rouge_l", "words")]
    figure, axis = plt.subplots(figsize=(7.5, 3.6))
    width = 0.27
    for offset, (model, color) in enumerate((("base", "#9aa5b1"), ("tuned", "#3b6fb6"), ("brand", "#d2691e"))):
        values = [(r.get(model) or 0.0) for r in rows]
        axis.barh([i + (offset - 1) * width for i in range(len(rows))], values, height=width, label=model,
                  color=color)
    axis.set_yticks(range(len(rows)), [r["measure"].replace("_", " ") for r in rows])
    axis.invert_yaxis()
    axis.legend(loc="lower right")
    axis.grid(alpha=0.3, axis="x")
    return figure


def build_report(brand: BrandKit, generations: list, metrics: dict[str, Any], log_history: list[dict[str, Any]],
                 collect_summary: dict[str, Any] | None = None, clean_summary: dict[str, Any] | None = None,
                 examples_summary: dict[str, Any] | None = None, notes: list[str] | None = None,
                 per_generation=None, reference=None, votes: list[dict[str, Any]] | None = None,
                 readiness_html: str = "") -> str:
    """The whole report as an HTML string."""
    parts = [f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{esc(brand.name)}: "
             f"generic vs tuned</title><style>{STYLE}</style></head><body>",
             f"<h1>{esc(brand.name)}</h1><p class=\"muted\">{esc(brand.sells)}</p>",
             f"<p><b>Voice:</b> {esc(brand.voice)}</p>"]
    for note in notes or []:
        parts.append(f'<p class="note">{esc(note)}</p>')
    parts.append("<h2>Verdict</h2>" + verdict_html(metrics, votes or []))
    parts.append("<h2>Data</h2>")
    if collect_summary:
        parts.append(f"<p><b>Collected:</b> {esc(collect_summary.get('summary', ''))}</p>")
    if clean_summary:
        parts.append(f"<p><b>Cleaned:</b> {esc(clean_summary.get('summary', ''))}</p>")
        parts.append(table(clean_summary.get("steps", []), ["step", "docs_in", "changed", "dropped", "docs_out"]))
        redaction = clean_summary.get("redaction") or {}
        if redaction.get("entities"):
            found = ", ".join(f"{n} {k}" for k, n in redaction["entities"].items())
            parts.append(f"<p><b>Personal data redacted:</b> {esc(found)} "
                         f"({redaction.get('share', 0):.1%} of the kept text)</p>")
    if readiness_html:  # built by brandkit.readiness, which escapes what it shows
        parts.append("<h3>Ready to train?</h3>" + readiness_html)
    if examples_summary:
        parts.append(table([{"split": k, **v} for k, v in examples_summary.items()]))
    parts.append("<h2>Training</h2>")
    if log_history:
        parts.append(img(loss_figure(log_history), "training and validation loss"))
    parts.append("<h2>Measures</h2>")
    if per_generation is not None and reference is not None and len(per_generation):
        parts.append(img(style_figure(per_generation, reference), "brand-style score per model"))
    if metrics.get("style"):
        parts.append(img(stylometrics_figure(metrics["style"]), "style habits: base, tuned, brand"))
        parts.append(table(metrics["style"], ["measure", "base", "tuned", "brand"]))
    if votes:
        parts.append("<h2>Blind votes</h2>" + votes_html(votes))
    parts.append("<h2>Every prompt, side by side</h2>" + generations_html(generations))
    parts.append("</body></html>")
    return "\n".join(parts)


def verdict_html(metrics: dict[str, Any], votes: list[dict[str, Any]]) -> str:
    rows = []
    ppl = metrics.get("perplexity") or {}
    if ppl:
        rows.append({"measure": "held-out perplexity of the brand's own text (lower is better)",
                     "base": ppl.get("base"), "tuned": ppl.get("tuned")})
    style = metrics.get("style_score") or {}
    if style:
        rows.append({"measure": "brand-style score of the generations, mean (higher is better; the brand's "
                                f"own texts score {style.get('brand', float('nan')):.2f})",
                     "base": style.get("base"), "tuned": style.get("tuned")})
    html_ = table(rows, ["measure", "base", "tuned"])
    if votes:
        from .compare import win_rate

        rate = win_rate(votes)
        html_ += (f"<p><b>Blind votes:</b> the tuned model won {rate.rate:.0%} of {rate.votes} comparison(s) "
                  f"(95% interval {rate.low:.0%} to {rate.high:.0%}; ties and \"both bad\" count half).</p>")
    return html_


def votes_html(votes: list[dict[str, Any]]) -> str:
    from .compare import rater_agreement, votes_by_prompt, win_rate

    rate = win_rate(votes)
    agreement = rater_agreement(votes)
    out = [table([{"votes": rate.votes, "tuned wins": rate.wins, "base wins": rate.losses, "ties": rate.ties,
                   "both bad": rate.both_bad, "tuned win rate": rate.rate, "95% low": rate.low,
                   "95% high": rate.high}])]
    if agreement["pairs"]:
        out.append(table(agreement["pairs"], ["raters", "items", "agreement", "kappa"]))
    out.append(table(votes_by_prompt(votes).to_dict("records")))
    return "".join(out)


def generations_html(generations: list) -> str:
    by_item: dict[str, dict[str, Any]] = {}
    for g in generations:
        entry = by_item.setdefault(g.item_id, {"g": g, "base": [], "tuned": []})
        entry[g.model].append(g.text)
    blocks = []
    for item_id, entry in by_item.items():
        g = entry["g"]
        reference = (f'<details><summary>The brand\'s own answer</summary><div class="out">{esc(g.reference)}'
                     "</div></details>") if g.reference else ""
        blocks.append(
            f'<div class="item"><span class="tag">{esc(g.kind)}</span><span class="tag">{esc(g.source)}</span>'
            f'<span class="muted">{esc(item_id)}</span><p><b>Prompt:</b> {esc(g.prompt)}</p><div class="pair">'
            f'<div><b>Base (untuned)</b><div class="out">{esc(chr(10).join(entry["base"]))}</div></div>'
            f'<div><b>Tuned</b><div class="out">{esc(chr(10).join(entry["tuned"]))}</div></div></div>'
            f"{reference}</div>")
    return "\n".join(blocks)


def write_report(path: str | Path, **kwargs: Any) -> Path:
    path = Path(path)
    path.write_text(build_report(**kwargs), encoding="utf-8")
    return path


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None
