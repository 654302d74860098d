"""The four stages run in order over one run folder; the CLI and the notebooks call these.

A run folder holds config.yaml and one sub-folder per stage:
collect/ -> clean/ -> examples/ -> train/ -> compare/, and report.html.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .config import BrandKit, BrandkitError, RunConfig


class Run:
    """Paths and stage functions for one run folder."""

    def __init__(self, config: RunConfig, log: Callable[[str], None] = print, progress: bool = True):
        from .hardware import is_main_process

        self.config = config
        self.dir = Path(config.out_dir)
        self.log = log if is_main_process() else (lambda _: None)  # one voice under accelerate launch
        self.progress = progress
        self.timings: dict[str, float] = {}

    @property
    def brand(self) -> BrandKit:
        return self.config.brand_kit()

    def path(self, *parts: str) -> Path:
        return self.dir.joinpath(*parts)

    def _timed(self, name: str, func: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        result = func()
        self.timings[name] = time.perf_counter() - start
        return result

    def collect(self):
        from .collect import collect

        self.dir.mkdir(parents=True, exist_ok=True)
        self.config.to_yaml(self.path("config.yaml"))
        result = self._timed("collect", lambda: collect(self.config.source_dir(), self.config.collect,
                                                        progress=self.progress, brand=self.brand))
        if not result.records:
            reasons = "; ".join(f"{f.path}: {f.reason}" for f in result.skipped[:3])
            raise BrandkitError(f"nothing could be imported from {self.config.source_dir()} ({reasons})")
        paths = result.save(self.path("collect"))
        self.log(f"collect: {result.summary()}\n  records: {paths['records_jsonl']}\n  report:  {paths['report']}")
        return result

    def clean(self):
        from .clean import clean
        from .collect import load_records

        records = load_records(self.path("collect"))
        result = self._timed("clean", lambda: clean(records, self.config.clean, brand=self.brand))
        paths = result.save(self.path("clean"))
        self.log(f"clean: {result.summary()}\n  dataset: {paths['cleaned_dataset']} (+ {paths['cleaned_jsonl'].name})"
                 f"\n  audit:   {paths['audit']}")
        return result

    def readiness(self, clean_result=None):
        """The data-readiness check on the cleaned data, before training; saved beside the clean outputs."""
        from .readiness import check

        if clean_result is None:
            raise BrandkitError("the readiness check needs the clean stage's result (run clean first)")
        report = self._timed("readiness", lambda: check(clean_result, self.brand, self.config.train,
                                                        self.config.examples,
                                                        collected=self.path("collect", "collect_report.json")))
        (self.path("clean", "readiness.json")).write_text(json.dumps(report.summary(), indent=2), encoding="utf-8")
        (self.path("clean", "readiness.html")).write_text(report.to_html(), encoding="utf-8")
        s = report.summary()
        lines = [f"readiness: {s['examples']} training examples, median {s['tokens']['median']:.0f} tokens, "
                 f"{s['over_max_seq_length']} over max_seq_length, {100 * s['redacted_share']:.1f}% redacted"
                 + (f", {s['received_mail_set_aside']} received messages set aside"
                    if s["received_mail_set_aside"] else "")
                 + (f", {minutes(s['estimate_minutes'])} to train on the {s['preset']} preset"
                    if s["estimate_minutes"] is not None else "")]
        lines += [f"  warning: {w}" for w in report.warnings]
        self.log("\n".join(lines))
        return report

    def examples(self):
        from .clean import load_cleaned
        from .examples import build_examples, save_examples, split_counts

        cleaned = load_cleaned(self.path("clean"))
        examples = self._timed("examples", lambda: build_examples(cleaned, self.brand, self.config.examples))
        paths = save_examples(examples, self.path("examples"))
        counts = {split: sum(c.values()) for split, c in split_counts(examples).items()}
        self.log(f"examples: {counts}\n  splits:  {paths['train_jsonl']} (+ validation.jsonl, heldout.jsonl and "
                 f"the datasets folder {paths['examples_dataset'].name}/)")
        return examples

    def train(self, callbacks: list | None = None, resume: bool = True):
        from .examples import load_examples
        from .train import train

        examples = load_examples(self.path("examples"))
        result = self._timed("train", lambda: train(examples, self.config.train, self.path("train"),
                                                    callbacks=callbacks, resume=resume, say=self.log,
                                                    progress=self.progress))
        final = next((h["train_loss"] for h in reversed(result.log_history) if "train_loss" in h), float("nan"))
        self.log(f"train: {result.backend} backend, preset {result.preset}, final training loss {final:.3f}"
                 f"\n  adapter: {result.adapter_dir}")
        return result

    def compare(self):
        from .compare import compare_models
        from .examples import load_examples

        examples = load_examples(self.path("examples"))
        result = self._timed("compare", lambda: compare_models(
            self.path("train", "adapter"), self.brand, examples, self.config.compare, self.path("compare"),
            progress=self.progress))
        metrics = result["metrics"]
        ppl, classifier = metrics["perplexity"], metrics["classifier"]
        self.log(f"compare: held-out perplexity generic {ppl['generic']:.2f} -> tuned {ppl['tuned']:.2f}; "
                 f"style classifier {classifier['heldout_accuracy']:.0%} accurate on held-out texts"
                 f"\n  generations: {self.path('compare', 'generations.jsonl')}"
                 f"\n  metrics:     {self.path('compare', 'metrics.json')}")
        self.log(side_by_side(result["generations"]))
        return result

    def report(self) -> Path:
        import pandas as pd

        from .compare import EditStore, VoteStore, load_generations
        from .examples import load_examples, split_counts
        from .report import read_json, write_report

        examples = load_examples(self.path("examples"))
        generations = load_generations(self.path("compare", "generations.jsonl"))
        per_generation = pd.read_csv(self.path("compare", "per_generation.csv"))
        reference = pd.read_csv(self.path("compare", "reference.csv"))
        path = write_report(
            self.path("report.html"), brand=self.brand,
            generations=generations, per_generation=per_generation, reference=reference,
            votes=VoteStore(self.path("compare", "votes.jsonl")).votes(),
            edits=EditStore(self.path("compare", "edits.jsonl")).edits(),
            metrics=read_json(self.path("compare", "metrics.json")) or {},
            log_history=read_json(self.path("train", "log_history.json")) or [],
            collect_summary=read_json(self.path("collect", "collect_report.json")),
            clean_summary=read_json(self.path("clean", "clean_report.json")),
            examples_summary=split_counts(examples),
            notes=report_notes(self.config),
            readiness_html=read_text(self.path("clean", "readiness.html")))
        self.log(f"report: {path}")
        return path

    STAGE_OUTPUTS = {"collect": ("collect", "records"), "clean": ("clean", "cleaned"),
                     "examples": ("examples", "examples"), "train": ("train", "adapter"),
                     "compare": ("compare", "generations.jsonl")}

    def done(self, stage: str) -> bool:
        return self.path(*self.STAGE_OUTPUTS[stage]).exists()

    def ensure_before(self, stage: str) -> None:
        """Run whichever earlier stages have no output yet (a notebook opened on its own still works)."""
        order = list(self.STAGE_OUTPUTS)
        for earlier in order[:order.index(stage)]:
            if not self.done(earlier):
                self.log(f"({earlier} has not run in {self.dir} yet: running it first)")
                result = getattr(self, earlier)()
                if earlier == "clean":
                    self.readiness(result)

    def branch(self, name: str, upto: str = "examples") -> Run:
        """A new run folder beside this one, `<folder>-<name>`, for an experiment; this run is never touched.

        The stages up to and including `upto` are copied from this run (they need not run again), and
        the branch gets its own copy of the settings: change `branch.config`, then run the later stages
        there. Making the same branch again copies those stages afresh.
        """
        import copy
        import shutil

        order = list(self.STAGE_OUTPUTS)
        if upto not in order:
            raise BrandkitError(f"upto must be one of {', '.join(order)}, not {upto!r}")
        if not name or any(c in name for c in "/\\") or name.startswith("."):
            raise BrandkitError(f"a branch needs a plain name (no slashes), not {name!r}")
        config = copy.deepcopy(self.config)
        config.out_dir = str(self.dir.parent / f"{self.dir.name}-{name}")
        other = Run(config, log=self.log, progress=self.progress)
        other.dir.mkdir(parents=True, exist_ok=True)
        for stage in order[:order.index(upto) + 1]:
            folder = self.STAGE_OUTPUTS[stage][0]
            if not self.done(stage):
                raise BrandkitError(f"{stage} has not run in {self.dir} yet: run it before branching from it")
            shutil.rmtree(other.path(folder), ignore_errors=True)
            shutil.copytree(self.path(folder), other.path(folder))
        config.to_yaml(other.path("config.yaml"))
        return other

    def all(self) -> dict[str, float]:
        """Every stage in order; returns seconds per stage."""
        self.collect()
        self.readiness(self.clean())
        for stage in (self.examples, self.train, self.compare):
            stage()
        self._timed("report", self.report)
        self.path("timings.json").write_text(json.dumps(self.timings, indent=2), encoding="utf-8")
        return self.timings

    def verdict(self) -> str:
        """The compare stage's one-sentence verdict (the report opens with it)."""
        metrics = json.loads(self.path("compare", "metrics.json").read_text(encoding="utf-8")) \
            if self.path("compare", "metrics.json").exists() else {}
        return metrics.get("verdict") or "compare has not run yet, so there is no verdict."


def side_by_side(generations, items: int = 2, width: int = 300) -> str:
    """The first few brand-kit prompts, answered by each model, for the terminal."""
    import textwrap

    by_item: dict[str, dict[str, str]] = {}
    prompts: dict[str, str] = {}
    for g in generations:
        if g.source == "brand_kit" and g.sample == 0:
            by_item.setdefault(g.item_id, {})[g.model] = g.text
            prompts[g.item_id] = g.prompt
    lines = []
    for item_id in list(by_item)[:items]:
        lines.append(f"\n  Request: {prompts[item_id]}")
        for model, text in by_item[item_id].items():
            short = textwrap.shorten(" ".join(text.split()), width=width, placeholder=" ...")
            lines.append(textwrap.fill(short, width=100, initial_indent=f"  {model:>8}: ", subsequent_indent=" " * 12))
    return "\n".join(lines)


def minutes(value: float) -> str:
    return "under a minute" if value < 1 else f"about {value:.0f} minutes"


def read_text(path: Path) -> str:
    return path.read_text(encoding="utf-8") if path.exists() else ""


def report_notes(config: RunConfig) -> list[str]:
    from .models import base_model_info

    info = base_model_info(config.train.base_model)
    if info and info.rehearsal:
        return ["This run used brandkit's offline tiny model (a few million parameters, trained only on a "
                "small pool of generic business texts). Its output is a rehearsal of the pipeline, not a quality "
                "result: set train.base_model to a real model (for example a SmolLM2 or a 4-bit Llama/Qwen on a "
                "GPU) for writing you would use."]
    return []
