"""Report: one self-contained file, and nothing from data or models can run in it."""

from __future__ import annotations

import re

from brandkit.compare import Generation
from brandkit.config import BrandKit
from brandkit.report import build_report

EVIL = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def test_everything_from_data_is_escaped():
    brand = BrandKit(name=f"Shop {EVIL}", slug="s", voice=EVIL, sells=EVIL)
    generations = [Generation("i1", "email", "brand_kit", f"Prompt {EVIL}", EVIL, model, 0, f"{model} {EVIL}")
                   for model in ("base", "tuned")]
    votes = [{"A": "base", "B": "tuned", "winner": "tuned", "choice": "B", "rater": EVIL, "item_id": "i1",
              "sample": 0, "reason": EVIL}]
    page = build_report(brand, generations, {"perplexity": {"base": 9.0, "tuned": 5.0}},
                        [{"step": 1, "loss": 2.0}, {"step": 2, "loss": 1.5, "eval_loss": 1.6}],
                        clean_summary={"summary": EVIL, "steps": []}, votes=votes, notes=[EVIL])
    assert not re.search(r"<script", page, re.I) and "onerror=alert" not in page.replace("onerror=alert(1)&gt;", "")
    assert "&lt;script&gt;" in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert page.count("&lt;script&gt;") >= 8


def test_report_is_self_contained(small_run):
    page = small_run.path("report.html").read_text()
    sources = re.findall(r'src="([^"]*)"', page)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    assert "<link" not in page and "<script" not in page.lower()
    for section in ("Verdict", "Data", "Training", "Measures", "Every prompt, side by side"):
        assert f"<h2>{section}</h2>" in page
    assert "rehearsal of the pipeline, not a quality result" in page


def test_votes_pair_that_matters_first_and_edits_per_contender():
    brand = BrandKit(name="Shop", slug="s")
    generations = [Generation("i1", "email", "brand_kit", "Prompt", "", model, 0, f"{model} text", 10)
                   for model in ("generic", "prompted", "tuned")]
    votes = [{"A": a, "B": b, "winner": w, "choice": "A", "rater": "ann", "item_id": item, "sample": 0}
             for a, b, w, item in (("generic", "tuned", "tuned", "i1"), ("tuned", "prompted", "prompted", "i1"),
                                   ("tuned", "prompted", "tuned", "i2"))]
    edits = [{"contender": c, "draft": "abc", "sent": "abc", "similarity": s, "kept": s, "seconds": 10.0,
              "seen_labelled": False} for c, s in (("generic", 0.2), ("tuned", 0.9))]
    page = build_report(brand, generations, {"verdict": "One sentence."}, [], votes=votes, edits=edits)
    body = page[page.index("<body>"):]
    assert body.index("<b>Verdict:</b> One sentence.") < body.index("<h2>")
    votes_table = page[page.index("<h2>Blind votes</h2>"):]
    assert votes_table.index("Tuned vs Generic + brand prompt") < votes_table.index("Tuned vs Generic<")
    assert "Tuned won 50% against Generic + brand prompt in 2 vote(s) on 2 prompt(s)" in page
    edits_part = page[page.index("<h2>Editing the drafts</h2>"):]
    assert edits_part.index("Tuned") < edits_part.index("Generic") and "0.9" in edits_part
