"""Lessons: the course's explanations, computed from a real run's files and checked against the numbers they quote."""

from __future__ import annotations

import json
import math
import random

import pandas as pd
import pytest

from brandkit import lessons


def history(train: list[float], validation: list[tuple[int, float]]) -> list[dict]:
    rows = [{"step": step, "loss": loss} for step, loss in enumerate(train, 1)]
    rows += [{"step": step, "eval_loss": loss} for step, loss in validation]
    return sorted(rows, key=lambda r: r["step"]) + [{"step": len(train), "train_loss": sum(train) / len(train)}]


def test_the_adapter_is_counted_from_its_file_and_its_model(small_run):
    from safetensors import safe_open

    from brandkit.readiness import count_parameters

    size = lessons.adapter_size(small_run.path("train", "adapter"))
    assert size.model_parameters == count_parameters("brandkit-tiny") > 3_000_000
    with safe_open(str(small_run.path("train", "adapter", "adapter_model.safetensors")), framework="pt") as handle:
        lora = sum(math.prod(handle.get_slice(k).get_shape()) for k in handle.keys() if "lora_" in k)
    # r x (inputs + outputs) for every adapted matrix is exactly what the LoRA tensors in the file hold
    assert size.lora_parameters() == lora and size.adapter_parameters >= lora
    assert size.lora_parameters(2 * size.rank) == 2 * size.lora_parameters()
    assert size.rank == 16 and size.alpha == 32 and size.layers == 4 and len(size.shapes) == 7 * 4
    assert size.targets[:3] == ["q_proj", "k_proj", "v_proj"] and 0 < size.share < 0.2
    sentence = size.sentence()
    assert f"{size.share:.1%} of the model" in sentence and "rank 16" in sentence and "32 / 16 = 2" in sentence


def test_the_adapter_figure_draws_the_counted_sizes(small_run):
    size = lessons.adapter_size(small_run.path("train", "adapter"))
    figure = lessons.adapter_size_figure(size)
    left, right = figure.axes[:2]
    widths = [bar.get_width() for bar in left.patches]
    assert widths == pytest.approx([size.model_parameters / 1e6, size.adapter_parameters / 1e6])
    ranks, counts = right.lines[0].get_data()
    assert list(counts) == pytest.approx([size.lora_parameters(int(r)) / 1e6 for r in ranks])
    assert "this run: rank 16" in [t.get_text() for t in right.get_legend().get_texts()]


def test_the_key_settings_are_the_resolved_values():
    from brandkit.config import TrainConfig
    from brandkit.hardware import Hardware
    from brandkit.presets import resolve_config

    cpu = Hardware("cpu", "test cpu", 8.0, bf16=False, fp16=False, unsloth=False)
    resolved, _, _ = resolve_config(TrainConfig(base_model="brandkit-tiny", lora_r=8), cpu)
    table = lessons.key_settings(resolved)
    assert table.loc["lora_r", "value"] == "8" and table.loc["learning_rate", "value"] == "0.003"
    assert table.loc["batch", "value"] == "8 x 1 = 8" and table.loc["target_modules", "value"].startswith("q_proj")
    assert all(table["what it does"].str.len() > 20)


def test_a_falling_curve_says_more_steps_could_help():
    text = lessons.read_loss_curve(history([3.2, 3.0, 2.8, 2.6], [(2, 2.9), (4, 2.7)]))
    assert text.startswith("The training loss fell from 3.20 at step 1 to 2.60 at step 4.")
    assert "from 2.90 at step 2 to 2.70 at step 4, lowest (2.70) at step 4" in text
    assert "still falling" in text and f"perplexity of {math.exp(2.7):.1f}" in text


def test_a_rising_validation_loss_is_read_as_over_fitting_with_the_best_step():
    text = lessons.read_loss_curve(history([3.0, 2.0, 1.2, 0.6, 0.15], [(1, 2.5), (2, 2.4), (3, 2.45), (4, 2.6),
                                                                          (5, 2.9)]))
    assert "over-fitting" in text and "adapter of step 2, where it was lowest" in text
    assert "kept falling" in text and "Under about 0.2" in text  # 0.15 at the end: reciting, not learning


def test_a_validation_loss_that_stopped_falling_and_a_missing_one_are_said_plainly():
    flat = lessons.read_loss_curve(history([3.0, 2.5, 2.2, 2.0], [(1, 2.6), (2, 2.4), (3, 2.5), (4, 2.45)]))
    assert "stopped falling (lowest at step 2, 2.45 now)" in flat and "over-fitting" not in flat
    none = lessons.read_loss_curve(history([3.0, 2.9], []))
    assert "no validation point" in none and "eval_steps" in none
    assert lessons.read_loss_curve([]).startswith("There is no training loss")
    assert "measured once" in lessons.read_loss_curve(history([3.0, 2.9], [(2, 2.8)]))


def test_the_curve_reading_and_brandkits_warning_agree_on_over_fitting():
    """read_loss_curve calls it over-fitting exactly when train's TrainingAdvice warns (the same rule)."""
    from brandkit.train import TrainingAdvice

    rng = random.Random(0)
    for _ in range(200):
        points = [(step, rng.uniform(1, 3)) for step in range(1, rng.randint(2, 7))]
        advice = TrainingAdvice(lambda _: None)
        for n in range(1, len(points) + 1):
            advice.check_validation(points[:n])
        warned_at_end = lessons.rose_twice(points)
        assert ("over-fitting" in lessons.read_loss_curve(history([3.0] * len(points), points))) == warned_at_end
        if warned_at_end:
            assert any(w.startswith("overfitting") for w in advice.warnings)


def test_the_over_fitting_recipe_comes_from_the_runs_own_settings():
    from brandkit.config import TrainConfig
    from brandkit.hardware import Hardware

    cpu = Hardware("cpu", "test cpu", 8.0, bf16=False, fp16=False, unsloth=False)
    recipe = lessons.overfitting_settings(TrainConfig(base_model="brandkit-tiny"), cpu, examples=4, max_steps=20)
    assert recipe.learning_rate == pytest.approx(3 * 3e-3)  # three times the tiny model's own 3e-3
    assert (recipe.per_device_train_batch_size, recipe.gradient_accumulation_steps, recipe.eval_steps) == (4, 1, 1)
    assert recipe.max_steps == 20 and recipe.save_steps > 20 and recipe.max_seq_length <= 128


def test_the_over_fitting_experiment_fires_the_warning_and_leaves_the_run_alone(small_run):
    adapter = small_run.path("train", "adapter", "adapter_model.safetensors")
    before = adapter.read_bytes()
    result = lessons.overfitting_experiment(small_run)
    assert any(note.startswith("overfitting") for note in result.notes), result.notes
    train, validation = lessons.losses(result.log_history)
    assert lessons.rose_twice(validation) and train[-1][1] < train[0][1]
    assert len(validation) < 30  # it stopped when the warning fired, not at max_steps
    assert result.adapter_dir == small_run.dir.parent / f"{small_run.dir.name}-overfit" / "train" / "adapter"
    assert adapter.read_bytes() == before and "over-fitting" in lessons.read_loss_curve(result.log_history)


def test_odds_and_the_style_score_sentence():
    assert lessons.odds(0.8) == "about 4 to 1 that it is" and lessons.odds(0.1) == "about 9 to 1 that it is not"
    assert lessons.odds(0.5) == "about even odds that it is" and lessons.odds(0.3) == "about 2.3 to 1 that it is not"
    assert lessons.odds(0.6) == "about 1.5 to 1 that it is" and lessons.odds(0.999) == "near certainty that it is"
    metrics = {"style_score": {"generic": 0.03, "prompted": 0.13, "tuned": 0.66, "brand": 0.93},
               "classifier": {"heldout_accuracy": 1.0}}
    text = lessons.style_score_sentence(metrics)
    assert "0.8 means it would give about 4 to 1" in text and "right on 100% of texts it never saw" in text
    assert "average 0.93 (about 13 to 1 that it is the brand's)" in text
    assert "the tuned model's 0.66, the prompted generic model's 0.13, the generic model's 0.03" in text


def test_the_perplexity_sentence_says_lower_or_higher():
    better = lessons.perplexity_sentence({"perplexity": {"generic": 34.3, "tuned": 17.2}})
    assert "34.3" in better and "17.2" in better and "50% lower" in better and "among 17 equally likely" in better
    worse = lessons.perplexity_sentence({"perplexity": {"generic": 10.0, "tuned": 12.0}})
    assert "20% higher" in worse and "over-fitting" in worse
    assert "no held-out perplexity" in lessons.perplexity_sentence({"perplexity": {"generic": float("nan"),
                                                                                   "tuned": 1.0}})


def generations(gaps: dict[str, float]) -> pd.DataFrame:
    rows = []
    for item, gap in gaps.items():
        rows += [{"item_id": item, "model": "prompted", "style_score": 0.3},
                 {"item_id": item, "model": "tuned", "style_score": 0.3 + gap},
                 {"item_id": item, "model": "generic", "style_score": 0.1}]
    return pd.DataFrame(rows)


def test_the_style_gap_is_paired_by_request_with_an_interval():
    same = lessons.style_gap(generations({f"i{n}": 0.2 for n in range(5)}))
    assert same["gap"] == pytest.approx(0.2) and same["low"] == pytest.approx(0.2) == same["high"]
    mixed = lessons.style_gap(generations({"a": 0.5, "b": -0.4, "c": 0.1, "d": -0.1}))
    assert mixed["requests"] == 4 and mixed["low"] < 0 < mixed["high"] and mixed["gap"] == pytest.approx(0.025)
    assert "is ahead" in lessons.style_gap_sentence(generations({f"i{n}": 0.2 for n in range(5)}))
    assert "cannot be told apart" in lessons.style_gap_sentence(generations({"a": 0.5, "b": -0.4, "c": 0.1}))
    assert "is behind" in lessons.style_gap_sentence(generations({f"i{n}": -0.3 for n in range(4)}))


def vote(winner: str, item: str, a: str = "tuned", b: str = "prompted") -> dict:
    return {"A": a, "B": b, "winner": winner, "choice": winner, "rater": "ann", "item_id": item, "sample": 0}


def test_the_votes_in_plain_words_count_both_bad_as_half():
    votes = [vote("tuned", "i1"), vote("tuned", "i2"), vote("tuned", "i3"), vote("prompted", "i4"),
             vote("both_bad", "i5"), vote("both_bad", "i6")]
    text = lessons.votes_sentence(votes)
    assert "3 wins, 1 losses, 0 ties and 2 \"both bad\" in 6 votes on 6 requests" in text
    assert "counts half a win for each side" in text and "win rate of 67%" in text  # (3 + 2 x 0.5) / 6
    assert "includes 50%" in text and "So many \"both bad\"" in text
    sure = lessons.votes_sentence([vote("tuned", f"i{n}") for n in range(30)])
    assert "win rate of 100%" in sure and "raters prefer the tuned model" in sure
    assert lessons.votes_sentence([]).startswith("No votes yet")


def test_the_edits_in_plain_words():
    edits = [{"contender": "tuned", "kept": 0.9, "similarity": 0.9, "draft": "a", "sent": "a", "seconds": 20},
             {"contender": "prompted", "kept": 0.5, "similarity": 0.6, "draft": "a", "sent": "b", "seconds": 60}]
    text = lessons.edits_sentence(edits)
    assert "The tuned model, 1 draft: 90% of the characters kept, 100% sent unchanged, a median 20 s" in text
    assert "the generic model with the brand prompt, 1 draft: 50% of the characters kept" in text
    assert lessons.edits_sentence([]).startswith("No edits yet")


def test_a_real_runs_loss_curve_is_read_with_its_own_numbers(small_run):
    log = json.loads(small_run.path("train", "log_history.json").read_text())
    train, validation = lessons.losses(log)
    text = lessons.read_loss_curve(log)
    assert f"{train[0][1]:.2f} at step {train[0][0]}" in text and f"{validation[-1][1]:.2f}" in text


def test_the_figures_are_drawn_once_in_a_notebook(small_run):
    """Returned closed: matplotlib's inline backend would draw an open figure a second time after the cell."""
    import matplotlib.pyplot as plt

    from brandkit.figures import loss_figure

    log = json.loads(small_run.path("train", "log_history.json").read_text())
    for figure in (loss_figure(log), lessons.loss_curves_figure({"a": log, "b": log}),
                   lessons.adapter_size_figure(lessons.adapter_size(small_run.path("train", "adapter")))):
        assert figure.number not in plt.get_fignums() and figure.axes
