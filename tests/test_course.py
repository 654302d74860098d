"""Course helpers: what each mode trains, your own brand kit started from a template, and experiments in branches."""

from __future__ import annotations

import pytest

from brandkit import course
from brandkit.config import BrandkitError


def test_each_mode_is_described_with_its_steps_and_folder(monkeypatch):
    monkeypatch.delenv("BRANDKIT_RUN", raising=False)
    monkeypatch.delenv("BRANDKIT_MODE", raising=False)
    smoke, full = course.describe_mode("smoke"), course.describe_mode("full")
    assert smoke.startswith("smoke: SmolLM2-135M-Instruct") and "6 training steps" in smoke
    assert "runs/course-smoke" in smoke and "runs/course-full" in full
    assert "every tenth of the run" in full and "BRANDKIT_MODE" in full
    monkeypatch.setenv("BRANDKIT_MODE", "smoke")  # the variable is what every notebook reads
    assert course.describe_mode().startswith("smoke:")


def test_your_own_brand_kit_starts_from_a_template_and_is_never_overwritten(tmp_path):
    folder = course.start_brand_kit(str(tmp_path / "mine"))
    todo = course.brand_kit_todo(folder)
    assert {line.split(":")[0] for line in todo} >= {"name", "sells", "voice", "sign_off", "preferred_terms",
                                                      "eval_prompts", "exports"}
    (tmp_path / "mine" / "brand.yaml").write_text("name: Corner Bakery\nvoice: Warm.\nsign_off: Bye\n")
    assert course.start_brand_kit(str(tmp_path / "mine")) == folder
    assert (tmp_path / "mine" / "brand.yaml").read_text().startswith("name: Corner Bakery")  # kept
    assert "name: still the template's text" not in course.brand_kit_todo(folder)
    assert course.brand_kit_todo("ember-coffee") == []  # a finished sample lacks nothing


def test_own_folder_is_data_mine_off_colab():
    assert course.own_folder() == "data/mine"


def test_a_branch_copies_the_finished_stages_and_leaves_the_run_alone(small_run):
    before = sorted(p.name for p in small_run.dir.iterdir())
    branch = small_run.branch("exercise", upto="clean")
    assert branch.dir == small_run.dir.parent / f"{small_run.dir.name}-exercise"
    assert branch.done("collect") and branch.done("clean") and not branch.done("examples")
    branch.config.clean.redact_pii = False
    assert small_run.config.clean.redact_pii is True  # the branch's settings are its own copy
    assert f"out_dir: {branch.dir}" in branch.path("config.yaml").read_text()
    assert sorted(p.name for p in small_run.dir.iterdir()) == before
    with pytest.raises(BrandkitError, match="upto must be one of"):
        small_run.branch("x", upto="nothing")
    with pytest.raises(BrandkitError, match="plain name"):
        small_run.branch("../elsewhere")
