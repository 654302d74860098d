"""Report: one self-contained HTML file to share: the brand, the data, the training, the verdict.

Everything that came from data or models is escaped; plots are embedded as PNG data URIs, so the
file opens anywhere, offline, and no document can run a script in it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .config import BrandKit
from .figures import esc, img, loss_figure, shown_once, table

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
img{max-width:100%}.verdict{font-size:1.15em;background:#eef6ff;border-left:4px solid #3b6fb6;
padding:.6em .9em}
"""


CONTENDER_COLORS = {"generic": "#9aa5b1", "prompted": "#8f6bb3", "tuned": "#3b6fb6", "base": "#9aa5b1",
                    "brand": "#d2691e"}


def _label(model: str) -> str:
    from .compare import SHORT_LABELS

    return SHORT_LABELS.get(model, model)


def _contenders_in(frame) -> list[str]:
    from .compare import CONTENDERS

    present = list(dict.fromkeys(frame["model"]))
    return [c for c in CONTENDERS if c in present] + [m for m in present if m not in CONTENDERS]


def style_figure(per_generation, reference):
    """Distribution of the brand-style score for each contender and the brand's own held-out texts."""
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6.5, 3.4))
    groups = [(_label(m), per_generation[per_generation["model"] == m]["style_score"])
              for m in _contenders_in(per_generation)]
    groups.append(("brand's own (held out)", reference["style_score"]))
    groups = [(name, values) for name, values in groups if len(values)]
    axis.boxplot([list(v) for _, v in groups], vert=False)
    axis.set_yticks(range(1, len(groups) + 1), [name for name, _ in groups])
    axis.set_xlim(0, 1)
    axis.set_xlabel("brand-style score (probability the text is the brand's)")
    axis.grid(alpha=0.3)
    figure.tight_layout()
    return shown_once(figure)


def stylometrics_figure(summary_rows: list[dict[str, Any]]):
    """Each habit per contender and the brand's own texts."""
    import matplotlib.pyplot as plt

    rows = [r for r in summary_rows if r["measure"] not in ("style_score", "rouge_l", "words", "finished")]
    models = [m for m in ("generic", "prompted", "tuned", "base", "brand") if rows and m in rows[0]]
    figure, axis = plt.subplots(figsize=(7.5, 3.8))
    width = 0.8 / max(len(models), 1)
    for offset, model in enumerate(models):
        values = [(r.get(model) or 0.0) for r in rows]
        axis.barh([i + (offset - (len(models) - 1) / 2) * width for i in range(len(rows))], values, height=width,
                  label=_label(model), color=CONTENDER_COLORS.get(model, "#999"))
    axis.set_yticks(range(len(rows)), [r["measure"].replace("_", " ") for r in rows])
    axis.invert_yaxis()
    axis.legend(loc="lower right", fontsize=8)
    axis.grid(alpha=0.3, axis="x")
    figure.tight_layout()
    return shown_once(figure)


def build_report(brand: BrandKit, generations: list, metrics: dict[str, Any], log_history: list[dict[str, Any]],
                 collect_summary: dict[str, Any] | None = None, clean_summary: dict[str, Any] | None = None,
                 examples_summary: dict[str, Any] | None = None, notes: list[str] | None = None,
                 per_generation=None, reference=None, votes: list[dict[str, Any]] | None = None,
                 readiness_html: str = "", edits: list[dict[str, Any]] | None = None) -> str:
    """The whole report as an HTML string; it opens with the verdict sentence."""
    parts = [f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{esc(brand.name)}: "
             f"generic vs tuned</title><style>{STYLE}</style></head><body>",
             f"<h1>{esc(brand.name)}</h1>"]
    if metrics.get("verdict"):
        parts.append(f'<p class="verdict"><b>Verdict:</b> {esc(metrics["verdict"])}</p>')
    parts += [f"<p class=\"muted\">{esc(brand.sells)}</p>", f"<p><b>Voice:</b> {esc(brand.voice)}</p>"]
    for note in notes or []:
        parts.append(f'<p class="note">{esc(note)}</p>')
    parts.append("<h2>Verdict</h2>" + verdict_html(metrics, votes or [], edits or []))
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
        parts.append(img(style_figure(per_generation, reference), "brand-style score per contender"))
    if metrics.get("style"):
        parts.append(img(stylometrics_figure(metrics["style"]), "style habits per contender and the brand"))
        columns = ["measure"] + [c for c in ("generic", "prompted", "tuned", "base", "brand") if c in metrics["style"][0]]
        parts.append(table(metrics["style"], columns))
    if votes:
        parts.append("<h2>Blind votes</h2>" + votes_html(votes))
    if edits:
        parts.append("<h2>Editing the drafts</h2>" + edits_html(edits))
    parts.append("<h2>Every prompt, side by side</h2>" + generations_html(generations))
    parts.append("</body></html>")
    return "\n".join(parts)


def contenders_table(metrics: dict[str, Any]) -> str:
    """Each contender's prompt length in tokens beside its scores."""
    rows = []
    for r in metrics.get("contenders") or []:
        rows.append({"contender": r["label"], "prompt tokens (mean)": round(r["prompt_tokens"]),
                     "prompt tokens (max)": r["prompt_tokens_max"],
                     "brand-style score (mean)": f"{r['style_score']:.2f}",
                     "brand-style score (median)": f"{r['style_score_median']:.2f}" if "style_score_median" in r else "n/a",
                     "ended on its own": _share(r.get("finished")), "sign-off used": _share(r.get("sign_off")),
                     "banned terms per answer": f"{r['banned_terms']:.2f}",
                     "preferred terms per 100 words": f"{r['preferred_terms_per_100']:.1f}", "words": round(r["words"]),
                     "held-out perplexity": f"{r['perplexity']:.1f}" if r.get("perplexity") is not None else "n/a"})
    return table(rows)


def _share(value: float | None) -> str:
    return f"{value:.0%}" if value is not None else "n/a"


def verdict_html(metrics: dict[str, Any], votes: list[dict[str, Any]], edits: list[dict[str, Any]] | None = None) -> str:
    style = metrics.get("style_score") or {}
    classifier = metrics.get("classifier") or {}
    html_ = contenders_table(metrics)
    if style:
        accuracy = classifier.get("heldout_accuracy")
        html_ += (f"<p>The brand's own held-out texts score <b>{style.get('brand', float('nan')):.2f}</b> on the "
                  "brand-style classifier"
                  + (f", which is <b>{accuracy:.0%}</b> accurate (balanced) on {classifier.get('heldout_brand_texts')} "
                     f"brand and {classifier.get('heldout_other_texts')} generic texts it was not trained on"
                     if accuracy is not None and accuracy == accuracy else "")
                  + ". Held-out perplexity applies where the prompt is the one training used (lower is better); the "
                    f"prompted contender may use up to {metrics.get('prompt_budget', '?')} prompt tokens.</p>")
    if votes:
        from .compare import pair_results

        first = pair_results(votes)[0]
        html_ += (f"<p><b>Blind votes:</b> {esc(_label(first.model))} won {first.rate:.0%} against "
                  f"{esc(_label(first.other))} in {first.votes} vote(s) on {first.prompts} prompt(s) (95% interval "
                  f"over prompts {first.low:.0%} to {first.high:.0%}; ties and \"both bad\" count half).</p>")
    if edits:
        from .compare import edit_summary

        rows = {r["contender"]: r for r in edit_summary(edits)}
        said = "; ".join(f"{esc(_label(c))} {r['kept']:.0%} kept (similarity {r['similarity']:.2f}, "
                         f"median {r['median_seconds']:.0f} s)" for c, r in rows.items())
        html_ += f"<p><b>How much of a draft survived editing:</b> {said}.</p>"
    return html_


def votes_html(votes: list[dict[str, Any]]) -> str:
    from .compare import pair_results, rater_agreement, votes_by_prompt

    rows = [{"pair": f"{_label(r.model)} vs {_label(r.other)}", "votes": r.votes, "prompts": r.prompts,
             "wins": r.wins, "losses": r.losses, "ties": r.ties, "both bad": r.both_bad, "win rate": r.rate,
             "95% low (over prompts)": r.low, "95% high (over prompts)": r.high,
             "seen labelled": r.seen_labelled} for r in pair_results(votes)]
    agreement = rater_agreement(votes)
    out = ["<p class=\"muted\">The first row is the owner's question: the tuned model against the generic model "
           "given the best hand-written prompt. Intervals resample prompts, not votes, because one prompt's "
           "votes are not independent.</p>", table(rows)]
    if agreement["pairs"]:
        out.append(table(agreement["pairs"], ["raters", "items", "agreement", "kappa"]))
    out.append(table(votes_by_prompt(votes).to_dict("records")))
    return "".join(out)


def edits_html(edits: list[dict[str, Any]]) -> str:
    from .compare import edit_summary

    rows = [{"contender": _label(r["contender"]), "drafts edited": r["drafts"], "kept (share of the draft)": r["kept"],
             "similarity (mean)": r["similarity"], "similarity (median)": r["median_similarity"],
             "sent unchanged": r["sent_unchanged"], "editing time (median s)": r["median_seconds"],
             "seen labelled": r["seen_labelled"]} for r in edit_summary(edits)]
    return ("<p class=\"muted\">Raters edited each draft, not told who wrote it, until they would send it. "
            "Kept is the share of the draft's characters still in the sent text; similarity is rapidfuzz's "
            "normalised Indel similarity of the two.</p>" + table(rows))


def generations_html(generations: list) -> str:
    from .compare import CONTENDERS

    by_item: dict[str, dict[str, Any]] = {}
    for g in generations:
        entry = by_item.setdefault(g.item_id, {"g": g, "texts": {}})
        entry["texts"].setdefault(g.model, []).append(g.text)
    models = [c for c in CONTENDERS if any(c in e["texts"] for e in by_item.values())]
    models += sorted({m for e in by_item.values() for m in e["texts"]} - set(models))
    blocks = []
    for item_id, entry in by_item.items():
        g = entry["g"]
        reference = (f'<details><summary>The brand\'s own answer</summary><div class="out">{esc(g.reference)}'
                     "</div></details>") if g.reference else ""
        columns = "".join(f'<div><b>{esc(_label(m))}</b><div class="out">{esc(chr(10).join(entry["texts"].get(m, [])))}'
                          "</div></div>" for m in models)
        blocks.append(
            f'<div class="item"><span class="tag">{esc(g.kind)}</span><span class="tag">{esc(g.source)}</span>'
            f'<span class="muted">{esc(item_id)}</span><p><b>Prompt:</b> {esc(g.prompt)}</p>'
            f'<div class="pair" style="grid-template-columns:repeat({len(models)},1fr)">{columns}</div>'
            f"{reference}</div>")
    return "\n".join(blocks)


def write_report(path: str | Path, **kwargs: Any) -> Path:
    path = Path(path)
    path.write_text(build_report(**kwargs), encoding="utf-8")
    return path


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None
