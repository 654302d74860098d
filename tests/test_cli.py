"""The `brandkit` command: plain one-line errors with exit code 2, and the stage commands."""

from __future__ import annotations

import json
import subprocess
import sys

import yaml

from brandkit.cli import build_parser, main, make_config


def run_cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "brandkit.cli", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600)


def assert_one_line_error(done: subprocess.CompletedProcess, *words: str) -> None:
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip() and "Warning" not in line]
    assert len(lines) == 1 and lines[0].startswith("brandkit: error:"), done.stderr
    assert "Traceback" not in done.stderr
    for word in words:
        assert word in lines[0]


def test_missing_folder(tmp_path):
    assert_one_line_error(run_cli("run", str(tmp_path / "nope"), "--out", str(tmp_path / "run")), "not found",
                          "nope")


def test_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    assert_one_line_error(run_cli("collect", str(tmp_path / "empty"), "--out", str(tmp_path / "run")), "empty")


def test_csv_without_the_named_column(tmp_path):
    data = tmp_path / "posts.csv"
    data.write_text("title,body\nHello,Our first post about the new shop.\n")
    assert_one_line_error(run_cli("collect", str(data), "--text-column", "content", "--out", str(tmp_path / "r")),
                          "posts.csv", "content")


def test_unknown_brand_and_stage_order(tmp_path):
    assert_one_line_error(run_cli("demo", "--brand", "no-such-brand", "--out", str(tmp_path / "r")), "no-such-brand")
    assert_one_line_error(run_cli("train", "--out", str(tmp_path / "fresh")), "examples")


def test_info_commands(capsys):
    assert main(["brands"]) == 0
    assert capsys.readouterr().out.split() == ["ember-coffee", "ledgerline", "spoke-sprocket"]
    assert main(["config", "--brand", "ledgerline"]) == 0
    config = yaml.safe_load(capsys.readouterr().out)
    assert config["brand"] == "ledgerline" and config["train"]["base_model"] == "smollm2-135m"
    assert main(["hardware"]) == 0
    assert "preset: cpu" in capsys.readouterr().out


def test_stage_commands_one_after_another(tmp_path, samples):
    out = str(tmp_path / "run")
    assert main(["collect", str(samples / "ledgerline" / "exports"), "--brand", "ledgerline", "--out", out,
                 "--quiet"]) == 0
    # later stages read the run folder's config.yaml: no need to repeat --brand
    assert main(["clean", "--out", out, "--quiet"]) == 0
    assert main(["examples", "--out", out, "--quiet"]) == 0
    assert (tmp_path / "run" / "examples" / "train.jsonl").exists()
    examples = [json.loads(line) for line in (tmp_path / "run" / "examples" / "train.jsonl").read_text().splitlines()]
    system = next(m["content"] for m in examples[0]["messages"] if m["role"] == "system")
    assert "Ledgerline" in system  # the run's brand, not the default one
    # a flag still wins over the saved settings
    args = build_parser().parse_args(["train", "--out", out, "--base-model", "some/model"])
    config = make_config(args)
    assert config.brand == "ledgerline" and config.train.base_model == "some/model"
