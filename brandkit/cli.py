"""The `brandkit` command: the same functions the notebooks call, one sub-command per stage."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from .config import DEFAULT_BRAND, BrandkitError, RunConfig, sample_brands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="brandkit", description=(
        "Fine-tune a language model on a business's own writing so it writes in the brand's voice, "
        "then compare it with the untuned model."))
    sub = parser.add_subparsers(dest="command", required=True)

    def run_options(p: argparse.ArgumentParser, default_out: str = "runs/demo") -> None:
        p.add_argument("--config", help="a config.yaml to start from (see `brandkit config`)")
        p.add_argument("--brand", help=f"a bundled brand slug or a folder with brand.yaml (default {DEFAULT_BRAND})")
        p.add_argument("--out", help=f"the run folder (default {default_out})")
        p.add_argument("--base-model", help="smollm2-135m (the offline default), brandkit-tiny (unit tests), a Hugging Face id, or a local folder")
        p.add_argument("--max-steps", type=int, help="stop training after this many optimizer steps")
        p.add_argument("--quiet", action="store_true", help="no progress bars")

    demo = sub.add_parser("demo", help="run all four stages on a bundled sample brand, offline")
    run_options(demo)
    run = sub.add_parser("run", help="run all four stages on your own exports")
    run_options(run, "runs/<brand>")
    run.add_argument("source", nargs="?", help="folder of exports (default: the brand's bundled exports)")

    collect = sub.add_parser("collect", help="import a folder of exports into records")
    run_options(collect, "runs/<brand>")
    collect.add_argument("source", help="folder (or file) of exports")
    collect.add_argument("--text-column", help="CSV/JSONL: the column that holds the text")
    for name, helptext in (("clean", "repair, strip, redact and dedupe the collected records"),
                           ("examples", "turn cleaned documents into chat examples and split them"),
                           ("train", "fine-tune a LoRA adapter on the examples"),
                           ("compare", "generate with base and tuned models and measure them"),
                           ("report", "write report.html for a run")):
        run_options(sub.add_parser(name, help=helptext), "runs/<brand>")
    export = sub.add_parser("export", help="the trained adapter as a merged model, a GGUF file and an Ollama Modelfile")
    run_options(export, "runs/<brand>")
    export.add_argument("--formats", default=",".join(EXPORT_FORMATS),
                        help=f"comma-separated, from {','.join(EXPORT_FORMATS)} (default: all)")
    export.add_argument("--quantization", default="q8_0",
                        help="GGUF type: f16, bf16, f32 or q8_0 (default) on any machine, through llama.cpp's "
                             "converter; q4_k_m and the other k-quants on a CUDA GPU, through Unsloth")
    export.add_argument("--to", help="the export folder (default: <run folder>/export); "
                                     "--base-model here is the 16-bit model to merge onto")
    sub.add_parser("brands", help="list the bundled sample brands")
    sub.add_parser("hardware", help="what this machine will train on, and why")
    config = sub.add_parser("config", help="print the default config as YAML")
    run_options(config)
    return parser


STAGES_AFTER_COLLECT = ("clean", "examples", "train", "compare", "report", "export")
EXPORT_FORMATS = ("adapter", "merged", "gguf", "modelfile")


def make_config(args: argparse.Namespace, default_out: str | None = None) -> RunConfig:
    """Settings from --config, or for a later stage the run folder's own config.yaml; flags win over both."""
    saved = Path(args.out) / "config.yaml" if getattr(args, "out", None) else None
    if getattr(args, "config", None):
        config = RunConfig.from_yaml(args.config)
    elif args.command in STAGES_AFTER_COLLECT and saved is not None and saved.is_file():
        config = RunConfig.from_yaml(saved)  # the settings the run was collected with: brand, redaction, model
        print(f"settings from {saved}", file=sys.stderr)
    else:
        config = RunConfig()
    if getattr(args, "brand", None):
        config.brand = args.brand
    if getattr(args, "source", None):
        source = Path(args.source)
        if not source.exists():
            raise BrandkitError(f"source folder not found: {source}")
        config.source = str(source)
    if getattr(args, "out", None):
        config.out_dir = args.out
    elif default_out:
        config.out_dir = default_out
    elif not getattr(args, "config", None):
        config.out_dir = f"runs/{Path(str(config.brand)).name}"
    if getattr(args, "base_model", None):
        config.train.base_model = args.base_model
    if getattr(args, "max_steps", None):
        config.train.max_steps = args.max_steps
    if getattr(args, "text_column", None):
        config.collect.text_column = args.text_column
    return config


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return dispatch(args)
    except BrandkitError as exc:
        print(f"brandkit: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("brandkit: interrupted (a training run resumes from its last checkpoint)", file=sys.stderr)
        return 130


def dispatch(args: argparse.Namespace) -> int:
    from .pipeline import Run

    if args.command == "brands":
        print("\n".join(sample_brands()))
        return 0
    if args.command == "hardware":
        from .course import explain_preset
        from .hardware import detect_hardware, preset_name

        hardware = detect_hardware()
        print(f"{hardware.describe()}\npreset: {preset_name(hardware)}\n{explain_preset()}")
        return 0
    config = make_config(args, "runs/demo" if args.command == "demo" else None)
    if args.command == "config":
        print(config.to_yaml(), end="")
        return 0
    config.brand_kit()  # a missing or broken brand kit fails here, before any work
    progress = not args.quiet and sys.stderr.isatty()  # no bars in logs and pipes
    if not progress:
        import datasets
        import transformers

        datasets.disable_progress_bars()
        transformers.utils.logging.disable_progress_bar()
        os.environ["TQDM_DISABLE"] = "1"
    run = Run(config, progress=progress)
    if args.command == "export":
        return export(run, args)
    if args.command in ("demo", "run"):
        started = time.perf_counter()
        timings = run.all()
        spent = ", ".join(f"{k} {v:.0f}s" for k, v in timings.items())
        print(f"\nDone in {time.perf_counter() - started:.0f}s ({spent}). Open {run.path('report.html')}")
        print(f"\nVerdict: {run.verdict()}")
        return 0
    stage = {"collect": run.collect, "clean": run.clean, "examples": run.examples, "train": run.train,
             "compare": run.compare, "report": run.report}[args.command]
    needs = {"clean": "collect", "examples": "clean", "train": "examples", "compare": "train", "report": "compare"}
    if args.command in needs and not run.path(needs[args.command]).is_dir():
        raise BrandkitError(f"{run.dir} has no {needs[args.command]}/ yet: run `brandkit {needs[args.command]}` "
                            f"with --out {run.dir} first")
    stage()
    return 0


def export(run, args: argparse.Namespace) -> int:
    from .export import export_all

    adapter = run.path("train", "adapter")
    if not (adapter / "adapter_config.json").exists():
        raise BrandkitError(f"{run.dir} has no trained adapter yet: run `brandkit train --out {run.dir}` first")
    formats = tuple(f.strip() for f in args.formats.split(",") if f.strip())
    export_all(adapter, Path(args.to) if args.to else run.path("export"), formats, args.quantization,
               brand=run.brand, name=Path(str(run.config.brand)).name, base_model=args.base_model)
    return 0


if __name__ == "__main__":
    sys.exit(main())
