"""The demo end to end: every stage's output lands in the run folder, from the CLI too."""

from __future__ import annotations

import json
import subprocess
import sys

import yaml


def test_run_folder_holds_every_output(small_run):
    run = small_run.dir
    expected = ["config.yaml", "collect/records.jsonl", "collect/records/dataset_info.json",
                "collect/collect_report.json", "clean/cleaned.jsonl", "clean/cleaned/dataset_info.json",
                "clean/audit.jsonl", "clean/clean_report.json", "clean/readiness.json", "clean/readiness.html",
                "examples/train.jsonl", "examples/validation.jsonl",
                "examples/heldout.jsonl", "examples/examples/dataset_dict.json",
                "train/adapter/adapter_config.json", "train/adapter/adapter_model.safetensors",
                "train/adapter/tokenizer.json", "train/adapter/brandkit_train.yaml", "train/log_history.json",
                "compare/generations.jsonl", "compare/metrics.json", "report.html", "timings.json"]
    missing = [name for name in expected if not (run / name).exists()]
    assert not missing
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["train"]["max_steps"] == 12
    heldout_ids = {json.loads(line)["id"] for line in (run / "examples/heldout.jsonl").read_text().splitlines()}
    train_ids = {json.loads(line)["id"] for line in (run / "examples/train.jsonl").read_text().splitlines()}
    assert heldout_ids and not heldout_ids & train_ids
    timings = json.loads((run / "timings.json").read_text())
    assert set(timings) == {"collect", "clean", "readiness", "examples", "train", "compare", "report"}


def test_cli_demo_prints_where_everything_is(tmp_path):
    # a short compare (the tiny model never ends an answer, so every one runs to max_new_tokens)
    short = tmp_path / "short.yaml"
    short.write_text("compare: {max_new_tokens: 24, max_kit_prompts: 4, max_heldout: 2}\n")
    done = subprocess.run([sys.executable, "-m", "brandkit.cli", "demo", "--out", str(tmp_path / "demo"),
                           "--config", str(short), "--max-steps", "3", "--base-model", "brandkit-tiny", "--quiet"],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    for needle in ("records.jsonl", "audit.jsonl", "train.jsonl", "adapter", "generations.jsonl",
                   "metrics.json", "report.html", "Done in"):
        assert needle in done.stdout, needle
    assert (tmp_path / "demo" / "report.html").exists()
    [verdict] = [line for line in done.stdout.splitlines() if line.startswith("Verdict: ")]
    assert verdict.count("-token prompt") == 3 and verdict.count("scores") == 1 and verdict.endswith(").")
    metrics = json.loads((tmp_path / "demo" / "compare" / "metrics.json").read_text())
    assert verdict == f"Verdict: {metrics['verdict']}"


def test_fine_tuning_moves_the_tiny_model_toward_the_brand(small_run):
    """Even a dozen steps lower the held-out perplexity and raise the brand-style score; the report says so."""
    metrics = json.loads(small_run.path("compare", "metrics.json").read_text())
    assert metrics["perplexity"]["tuned"] < metrics["perplexity"]["generic"]
    assert metrics["style_score"]["tuned"] > metrics["style_score"]["generic"]
    page = small_run.path("report.html").read_text()
    assert "held-out perplexity" in page and "brand-style score" in page
    assert f"{metrics['perplexity']['tuned']:.3g}" in page
