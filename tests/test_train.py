"""Train: a real (short) training run, resume, plain-language advice and the adapter's model card."""

from __future__ import annotations

import json

import pytest
import torch

from brandkit.config import TrainConfig
from brandkit.hardware import Hardware
from brandkit.train import train

CPU = Hardware("cpu", "test cpu", 8.0, bf16=False, fp16=False, unsloth=False)


def small_config(**overrides) -> TrainConfig:
    base = dict(base_model="brandkit-tiny", max_steps=6, per_device_train_batch_size=4, save_steps=2, eval_steps=3, logging_steps=1,
                learning_rate=1e-3)
    return TrainConfig(**{**base, **overrides})


def test_training_writes_an_adapter_that_loads_back(tmp_path, ember_examples):
    from peft import PeftModel

    from brandkit.models import load_tuned

    result = train(ember_examples, small_config(), tmp_path, hardware=CPU)
    assert (result.adapter_dir / "adapter_config.json").exists()
    assert (result.adapter_dir / "tokenizer.json").exists()
    assert (result.adapter_dir / "brandkit_train.yaml").exists()
    assert result.backend == "peft" and result.preset == "cpu"
    losses = [h["loss"] for h in result.log_history if "loss" in h]
    assert len(losses) == 6 and all(l == l for l in losses)
    model, tok = load_tuned(result.adapter_dir)
    assert isinstance(model, PeftModel)
    ids = tok("Hello", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        tuned = model(input_ids=ids).logits
        with model.disable_adapter():
            base = model(input_ids=ids).logits
    assert not torch.allclose(tuned, base)  # the adapter changed something, and it can be switched off


class StopAt:
    """A callback that interrupts training, as a kernel restart or a Colab disconnect would."""

    def __init__(self, step: int):
        from transformers import TrainerCallback

        outer = self

        class Callback(TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):
                if state.global_step == outer.step:
                    raise KeyboardInterrupt

        self.step, self.callback = step, Callback()


def test_interrupted_run_resumes_from_the_last_checkpoint(tmp_path, ember_examples):
    with pytest.raises(KeyboardInterrupt):
        train(ember_examples, small_config(), tmp_path, callbacks=[StopAt(5).callback], hardware=CPU)
    assert (tmp_path / "checkpoints" / "checkpoint-4").is_dir()
    resumed = train(ember_examples, small_config(), tmp_path, hardware=CPU)
    assert "resumed from checkpoint-4" in resumed.notes
    state = json.loads((tmp_path / "checkpoints" / "checkpoint-6" / "trainer_state.json").read_text())
    assert state["global_step"] == 6
    steps = [h["step"] for h in resumed.log_history if "loss" in h]
    assert steps == [1, 2, 3, 4, 5, 6]


def test_advice_in_plain_language():
    from brandkit.train import TrainingAdvice

    said = []
    advice = TrainingAdvice(said.append)
    advice.check_training([2.0, 1.0, 0.15], step=3, max_steps=30)
    advice.check_validation([(10, 1.2), (20, 1.3), (30, 1.5)])
    advice.check_training([3.0, 3.0, 3.01, 3.0, 3.02, 3.0], step=20, max_steps=30)
    keys = [w.split(":")[0] for w in advice.warnings]
    assert keys == ["memorising", "overfitting", "not learning"]
    assert "lowest (1.20) at step 10" in advice.warnings[1] and len(said) == 3
    advice.check_training([0.1], step=25, max_steps=30)
    assert len(advice.warnings) == 3  # each warning is said once


def test_adapter_folder_has_card_and_statistics(small_run):
    adapter = small_run.path("train", "adapter")
    card = (adapter / "README.md").read_text()
    assert card.startswith("---\nbase_model: brandkit-tiny\nlibrary_name: peft")
    assert "rehearsal of the pipeline" in card
    stats = json.loads((adapter / "data_stats.json").read_text())
    assert stats["train"]["examples"] > 50 and stats["heldout"]["examples"] > 0
    import yaml

    # the prompt it learned with is recorded, so a Modelfile uses the same one
    saved = yaml.safe_load((adapter / "brandkit_train.yaml").read_text())
    assert saved["system_prompt"] == "You write for Ember Street Coffee Roasters."


def test_on_a_cpu_the_training_loop_runs_with_freed_memory_kept(tmp_path, ember_examples, monkeypatch):
    import brandkit.train as train_module

    entered = []
    real = train_module.freed_memory_kept

    def recording():
        entered.append(True)
        return real()

    monkeypatch.setattr(train_module, "freed_memory_kept", recording)
    train(ember_examples, small_config(max_steps=1, save_steps=10, eval_steps=10), tmp_path, hardware=CPU)
    assert entered == [True]
