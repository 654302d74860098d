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
