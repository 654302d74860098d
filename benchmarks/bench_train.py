"""Training benchmark: brandkit's training path against plain TRL, a raw PyTorch loop and Unsloth's CPU mode.

    python benchmarks/bench_train.py [--steps 24] [--batch 8]

All contenders fine-tune the offline tiny model with the same LoRA (r=16 on all projections) on the
demo brand's training examples, with the loss on the assistant's answers only, for the same number
of optimizer steps and the same batch size. Each runs in its own process (one crashing cannot take
the others down; Unsloth patches transformers when imported). The first step is a warm-up and is
not timed. Prints real (non-padding) tokens per second, the ratios to brandkit, the final losses,
and achieved FLOP/s against this machine's measured matrix-multiply peak.

- brandkit:      brandkit.train.train with the CPU preset (fp32, no gradient checkpointing,
                 length-grouped batches, TRL's chunked loss).
- trl-defaults:  SFTTrainer with SFTConfig's defaults (bf16, gradient checkpointing) and the same
                 learning rate. On a CPU that advertises bf16 but cannot run it, this crashes: then
                 the same defaults with bf16 switched off are run and reported as the baseline.
- raw-loop:      forward, backward and AdamW step in plain PyTorch over brandkit's length-grouped batches,
                 with no framework around them (the practical limit).
- unsloth-cpu:   Unsloth's FastLanguageModel in its CPU fallback mode, where unsloth is installed, set
                 up by brandkit's GPU backend (fp32, no gradient checkpointing, the answers-only
                 loss) and batched as TRL does by default (random order).
- unsloth-cpu, length-grouped: the same with transformers' length-grouped sampler, which brandkit's
                 GPU backend asks for: it shows how much of the difference is batching.

brandkit runs without a validation split here, so that no contender evaluates inside its loop.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LEARNING_RATE = 2e-3


def prepare(folder: Path) -> Path:
    """The demo brand's examples, built once and shared by every contender."""
    from brandkit.config import RunConfig
    from brandkit.pipeline import Run

    run = Run(RunConfig(out_dir=str(folder / "run")), log=lambda _: None, progress=False)
    run.collect()
    run.clean()
    run.examples()
    return run.path("examples")


def lora():
    from peft import LoraConfig

    return LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, bias="none", task_type="CAUSAL_LM",
                      target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])


class StepClock:
    """Times steps 2..N (step 1 warms up) and counts the real tokens they saw."""

    def __init__(self):
        self.start = None
        self.end = None
        self.tokens = 0
        self.losses: list[float] = []

    def callback(self):
        from transformers import TrainerCallback

        clock = self

        class Callback(TrainerCallback):
            def on_step_begin(self, args, state, control, **kwargs):
                if state.global_step == 1 and clock.start is None:
                    clock.start = time.perf_counter()

            def on_log(self, args, state, control, logs=None, **kwargs):
                if logs and "loss" in logs:
                    clock.losses.append(float(logs["loss"]))

            def on_train_end(self, args, state, control, **kwargs):
                clock.end = time.perf_counter()  # the loop only: not what a contender does after it

        return Callback()


def tokens_per_batch_hook(trainer, clock: StepClock):
    """Count non-padding tokens in every batch the trainer takes, from step 2 on."""
    original = trainer.training_step

    def training_step(model, inputs, *args, **kwargs):
        if trainer.state.global_step >= 1:
            clock.tokens += int(inputs["attention_mask"].sum()) if "attention_mask" in inputs else int(
                (inputs["input_ids"] != trainer.processing_class.pad_token_id).sum())
        return original(model, inputs, *args, **kwargs)

    trainer.training_step = training_step


def run_brandkit(examples_dir: str, steps: int, batch: int) -> dict:
    from brandkit import train as train_module
    from brandkit.config import TrainConfig
    from brandkit.examples import load_examples

    examples = load_examples(examples_dir)
    clock = StepClock()
    built = {}
    original = train_module.build_peft_trainer

    def build(*args, **kwargs):
        trainer, model, tokenizer = original(*args, **kwargs)
        trainer.args.save_strategy = "no"  # as for every other contender: no checkpoint inside the timed loop
        tokens_per_batch_hook(trainer, clock)
        built.update(params=sum(p.numel() for p in model.parameters()), model=model, tokenizer=tokenizer)
        return trainer, model, tokenizer

    train_module.build_peft_trainer = build
    config = TrainConfig(max_steps=steps, per_device_train_batch_size=batch, learning_rate=LEARNING_RATE,
                         logging_steps=1, eval_steps=10**6, save_steps=10**6, warmup_steps=0.0,
                         lr_scheduler_type="constant")
    with tempfile.TemporaryDirectory() as out:
        train_module.train({"train": examples["train"]}, config, out, callbacks=[clock.callback()], resume=False,
                           say=lambda _: None)
        seconds = clock.end - clock.start
        final = final_loss(built["model"], built["tokenizer"], examples_dir)
    return {"seconds": seconds, "tokens": clock.tokens, "losses": clock.losses, "final": final,
            "params": built["params"]}


def final_loss(model, tokenizer, examples_dir: str) -> float:
    """Mean loss over every training example after training: the same yardstick for every contender."""
    import torch

    from brandkit.chat import pad_batch

    rows = tokenized(examples_dir, tokenizer).to_list()
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(rows), 8):
            group = rows[start:start + 8]
            ids, labels, attention = pad_batch(group, tokenizer.pad_token_id)
            n = int((labels[:, 1:] != -100).sum())
            total += model(input_ids=ids, attention_mask=attention, labels=labels).loss.item() * n
            count += n
    return total / count


def tokenized(examples_dir: str, tokenizer):
    from brandkit.chat import tokenize_examples
    from brandkit.examples import load_examples

    return tokenize_examples(load_examples(examples_dir)["train"], tokenizer, 1024).select_columns(
        ["input_ids", "assistant_masks"])


def run_trl_defaults(examples_dir: str, steps: int, batch: int, bf16: bool = True) -> dict:
    import torch
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM
    from trl import SFTConfig, SFTTrainer

    from brandkit.chat import prepare_tokenizer
    from brandkit.models import load_tokenizer, resolve_model

    tokenizer = load_tokenizer("brandkit-tiny")
    prepare_tokenizer(tokenizer)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(resolve_model("brandkit-tiny"), dtype=torch.float32),
                           lora())
    clock = StepClock()
    overrides = {"use_cpu": True} if bf16 else {"use_cpu": True, "bf16": False}  # use_cpu: required to run at all
    with tempfile.TemporaryDirectory() as out:
        args = SFTConfig(output_dir=out, max_steps=steps, per_device_train_batch_size=batch,
                         learning_rate=LEARNING_RATE, logging_steps=1, report_to="none", save_strategy="no",
                         **overrides)
        trainer = SFTTrainer(model=model, args=args, train_dataset=tokenized(examples_dir, tokenizer),
                             processing_class=tokenizer, callbacks=[clock.callback()])
        tokens_per_batch_hook(trainer, clock)
        trainer.train()
        seconds = clock.end - clock.start
    return {"seconds": seconds, "tokens": clock.tokens, "losses": clock.losses,
            "final": final_loss(model, tokenizer, examples_dir), "bf16": args.bf16,
            "gradient_checkpointing": args.gradient_checkpointing}


def run_raw_loop(examples_dir: str, steps: int, batch: int) -> dict:
    import torch
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM

    from brandkit.chat import pad_batch, prepare_tokenizer
    from brandkit.models import load_tokenizer, resolve_model
    from brandkit.peft_backend import LengthBatches

    torch.manual_seed(0)
    tokenizer = load_tokenizer("brandkit-tiny")
    prepare_tokenizer(tokenizer)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(resolve_model("brandkit-tiny"), dtype=torch.float32),
                           lora())
    rows = tokenized(examples_dir, tokenizer).to_list()
    order = list(LengthBatches([len(r["input_ids"]) for r in rows], batch, seed=0))  # brandkit's batches
    batches = [order[i:i + batch] for i in range(0, len(order), batch)]
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=LEARNING_RATE)
    model.train()
    tokens, losses, start = 0, [], None
    for step in range(steps):
        if step == 1:
            start = time.perf_counter()
        ids, labels, attention = pad_batch([rows[i] for i in batches[step % len(batches)]], tokenizer.pad_token_id)
        loss = model(input_ids=ids, attention_mask=attention, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if step >= 1:
            tokens += int(attention.sum())
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "tokens": tokens, "losses": losses, "final": final_loss(model, tokenizer, examples_dir)}


def run_unsloth(examples_dir: str, steps: int, batch: int, length_grouped: bool = False) -> dict:
    import unsloth  # noqa: F401  (first: it patches transformers and trl)
    from unsloth.chat_templates import train_on_responses_only

    from brandkit import unsloth_backend
    from brandkit.config import TrainConfig
    from brandkit.examples import load_examples

    clock = StepClock()
    config = TrainConfig(max_steps=steps, per_device_train_batch_size=batch, gradient_accumulation_steps=1,
                         learning_rate=LEARNING_RATE, optim="adamw_torch",  # TRL's default optimizer
                         dtype="float32", load_in_4bit=False, gradient_checkpointing="false", logging_steps=1,
                         eval_steps=10**6, save_steps=10**6, warmup_steps=0.0, lr_scheduler_type="constant")
    examples = load_examples(examples_dir)
    with tempfile.TemporaryDirectory() as out:
        trainer, model, tokenizer = unsloth_backend.build_trainer({"train": examples["train"]}, config, Path(out),
                                                                  [clock.callback()])
        trainer.args.save_strategy = "no"
        trainer.args.train_sampling_strategy = "group_by_length" if length_grouped else "random"
        tokens_per_batch_hook(trainer, clock)
        trainer.train()
        seconds = clock.end - clock.start
    del train_on_responses_only
    return {"seconds": seconds, "tokens": clock.tokens, "losses": clock.losses,
            "final": final_loss(model, tokenizer, examples_dir)}


def matmul_peak() -> float:
    import torch

    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    for _ in range(3):
        a @ b
    start, n = time.perf_counter(), 20
    for _ in range(n):
        a @ b
    return 2 * 1024**3 * n / (time.perf_counter() - start)


CONTENDERS = {"brandkit": run_brandkit, "trl-defaults": run_trl_defaults, "raw-loop": run_raw_loop,
              "unsloth-cpu": run_unsloth}


def child(name: str, examples_dir: str, steps: int, batch: int, extra: str) -> None:
    import torch

    torch.manual_seed(0)
    kwargs = json.loads(extra)
    result = CONTENDERS[name](examples_dir, steps, batch, **kwargs)
    print("RESULT " + json.dumps(result))


def spawn(name: str, examples_dir: Path, args, extra: dict | None = None) -> dict:
    command = [sys.executable, __file__, "--child", name, "--examples", str(examples_dir), "--steps",
               str(args.steps), "--batch", str(args.batch), "--extra", json.dumps(extra or {})]
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "UNSLOTH_DISABLE_STATISTICS": "1", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=3600)
    line = next((l for l in done.stdout.splitlines() if l.startswith("RESULT ")), None)
    if done.returncode != 0 or line is None:
        signal = -done.returncode if done.returncode < 0 else None
        why = "illegal instruction (SIGILL)" if signal == 4 else f"exit code {done.returncode}"
        return {"error": why, "stderr": done.stderr[-400:]}
    return json.loads(line[len("RESULT "):])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=24)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3,
                        help="each contender runs this many times, interleaved; the fastest run counts")
    parser.add_argument("--child")
    parser.add_argument("--examples")
    parser.add_argument("--extra", default="{}")
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.examples, args.steps, args.batch, args.extra)

    import importlib.util

    with tempfile.TemporaryDirectory() as folder:
        examples_dir = prepare(Path(folder))
        plan = {"brandkit": ("brandkit", None), "raw-loop": ("raw-loop", None),
                "trl-defaults": ("trl-defaults", None)}
        crashed = spawn("trl-defaults", examples_dir, args)
        if "error" in crashed:  # SFTConfig's defaults cannot run on this CPU at all: say so, then measure without bf16
            plan.pop("trl-defaults")
            plan["trl-defaults, bf16 off"] = ("trl-defaults", {"bf16": False})
        if importlib.util.find_spec("unsloth") is not None:
            plan["unsloth-cpu"] = ("unsloth-cpu", None)
            plan["unsloth-cpu, length-grouped"] = ("unsloth-cpu", {"length_grouped": True})
        results: dict[str, dict] = {}
        for _ in range(args.rounds):  # interleaved rounds: a noisy minute hurts every contender alike
            for label, (name, extra) in plan.items():
                run = spawn(name, examples_dir, args, extra)
                best = results.get(label)
                if best is None or "error" in best or ("error" not in run and
                                                       run["tokens"] / run["seconds"] > best["tokens"] / best["seconds"]):
                    results[label] = run
        if "error" in crashed:
            results["trl-defaults (as is)"] = crashed
    peak = matmul_peak()
    params = results["brandkit"].get("params", 0)
    ours = results["brandkit"]["tokens"] / results["brandkit"]["seconds"]
    print(f"{args.steps} steps of batch {args.batch} on the demo brand, best of {args.rounds} interleaved runs; "
          f"first step not timed; "
          f"matmul peak here {peak / 1e9:.0f} GFLOP/s (fp32, 1024x1024)")
    print("final loss: mean loss over all training examples after the run, the same yardstick for each")
    print(f"{'contender':26s} {'tokens/s':>9s} {'vs brandkit':>12s} {'final loss':>11s} {'GFLOP/s':>8s} {'of peak':>8s}")
    for name, r in results.items():
        if "error" in r:
            print(f"{name:26s} failed: {r['error']}" + (" (this CPU advertises bf16 instructions it cannot run)"
                                                         if "SIGILL" in r["error"] else ""))
            continue
        speed = r["tokens"] / r["seconds"]
        final = r["final"]
        flops = 4 * params * speed  # LoRA: forward and activation gradients, no weight gradients for the base
        print(f"{name:26s} {speed:9.0f} {speed / ours:11.2f}x {final:11.3f} {flops / 1e9:8.1f} {flops / peak:7.1%}")
    baseline = results.get("trl-defaults") or results.get("trl-defaults, bf16 off")
    if baseline and "error" not in baseline:
        print(f"brandkit vs TRL defaults: {ours / (baseline['tokens'] / baseline['seconds']):.1f}x (target >= 10x)")
    raw = results["raw-loop"]
    print(f"brandkit vs raw loop: {ours / (raw['tokens'] / raw['seconds']):.0%} (target >= 80%)")
    if "unsloth-cpu" in results and "error" not in results["unsloth-cpu"]:
        peer = results["unsloth-cpu"]
        print(f"brandkit vs Unsloth CPU mode: {ours / (peer['tokens'] / peer['seconds']):.2f}x (target > 1x)")
    grouped = results.get("unsloth-cpu, length-grouped")
    if grouped and "error" not in grouped:
        print(f"brandkit vs Unsloth CPU mode with length-grouped batches: "
              f"{ours / (grouped['tokens'] / grouped['seconds']):.2f}x")


if __name__ == "__main__":
    main()
