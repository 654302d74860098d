"""Helpers for the course notebooks: where am I, which mode, and the run every notebook shares.

The notebooks stay short because the decisions live here (and are tested): full mode (a real run:
SmolLM2-135M offline on a CPU, a 1-3B model in 4 bits on a GPU) or smoke mode (the same offline
SmolLM2, a few steps: a quick rehearsal, and what CI runs); which model for which hardware; where
the run folder is.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sys
from typing import Any

from .config import DEFAULT_BRAND, SMOLLM2_ID, RunConfig

# Full mode: a real model that fits the hardware (4-bit on GPUs through Unsloth).
FULL_MODELS = {"t4": "unsloth/Llama-3.2-1B-Instruct-bnb-4bit",
               "gpu": "unsloth/Llama-3.2-3B-Instruct-bnb-4bit",
               "cpu": SMOLLM2_ID}
PINNED = ("torch", "transformers", "trl", "peft", "datasets", "accelerate", "ipywidgets", "unsloth")


def on_colab() -> bool:
    return "google.colab" in sys.modules or any(key.startswith("COLAB_") for key in os.environ)


def where_am_i() -> str:
    if on_colab():
        return "Colab"
    if "KAGGLE_KERNEL_RUN_TYPE" in os.environ:
        return "Kaggle"
    if any(key.startswith("JPY_") or key == "JUPYTERHUB_USER" for key in os.environ) or "ipykernel" in sys.modules:
        return "Jupyter"
    return "a terminal"


def resolve_mode(mode: str | None = None) -> str:
    """"smoke" or "full": the BRANDKIT_MODE variable, else full (a CPU trains the offline SmolLM2 in minutes)."""
    mode = (mode or os.environ.get("BRANDKIT_MODE") or "auto").lower()
    if mode == "auto":
        return "full"
    if mode not in ("smoke", "full"):
        from .config import BrandkitError

        raise BrandkitError(f"mode must be smoke, full or auto, not {mode!r}")
    return mode


def course_config(mode: str | None = None, run_dir: str | None = None, brand: str | None = None) -> RunConfig:
    """The configuration all six notebooks share, for the chosen mode."""
    from .hardware import detect_hardware, preset_name

    mode = resolve_mode(mode)
    config = RunConfig(brand=brand or os.environ.get("BRANDKIT_BRAND") or DEFAULT_BRAND,
                       out_dir=run_dir or os.environ.get("BRANDKIT_RUN") or f"runs/course-{mode}")
    if mode == "smoke":
        config.train.base_model = SMOLLM2_ID
        config.train.max_steps = 6
        config.train.per_device_train_batch_size = 4
        config.train.max_seq_length = 256
        config.train.eval_steps = 2  # three validation points: enough for the overfitting warning to fire
        config.train.save_steps = 2
        config.train.logging_steps = 1
        config.compare.max_new_tokens = 48
        config.compare.max_kit_prompts = 4  # four kinds of request, two held-out: every widget has items to show
        config.compare.max_heldout = 2
    else:
        config.train.base_model = FULL_MODELS[preset_name(detect_hardware())]
        # as fractions of the run (transformers reads a value under 1 so): a validation point and a
        # checkpoint every tenth, whatever the data's size. Ten points let the overfitting warning
        # (validation loss rising twice) show up; a disconnect loses at most a tenth of the training.
        config.train.eval_steps = 0.1
        config.train.save_steps = 0.1
    return config


DRIVE = "/content/drive"


def drive_run_dir(mode: str | None = None, brand: str | None = None, folder: str = "brandkit-runs",
                  mount=None) -> str:
    """On Colab, a run folder on Google Drive (mounted here, once): the six notebooks share it and a disconnect keeps it.

    Each Colab notebook runs in its own runtime, whose disk is wiped when it disconnects; Drive is
    what they have in common. Off Colab, the usual local run folder.
    """
    mode = resolve_mode(mode)
    slug = os.path.basename(os.path.normpath(brand or os.environ.get("BRANDKIT_BRAND") or DEFAULT_BRAND))
    if not on_colab():
        return f"runs/course-{mode}"
    if not os.path.isdir(os.path.join(DRIVE, "MyDrive")):
        if mount is None:
            from google.colab import drive  # Colab asks for permission the first time

            mount = drive.mount
        mount(DRIVE)
    path = os.path.join(DRIVE, "MyDrive", folder, f"{slug}-{mode}")  # one folder per brand: runs never mix
    os.makedirs(path, exist_ok=True)
    return path


def colab_upload(folder, upload=None) -> list[str]:
    """Colab's own upload dialog, saving into folder (ipywidgets' FileUpload drops files of about 1 MB
    or more on Colab, ipywidgets issue 3452: mailbox exports are bigger than that)."""
    from pathlib import Path

    if upload is None:
        from google.colab import files

        upload = files.upload
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    saved = []
    for name, data in (upload() or {}).items():
        path = target / Path(name).name  # never outside the folder
        path.write_bytes(data)
        saved.append(str(path))
    print(f"{len(saved)} file(s) saved in {target}" if saved else "nothing uploaded")
    return saved


def environment() -> dict[str, Any]:
    """Where the notebook runs, on what hardware, with which versions of the stack."""
    from .hardware import detect_hardware, preset_name

    hardware = detect_hardware()
    versions = {}
    for name in PINNED:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return {"where": where_am_i(), "python": platform.python_version(), "hardware": hardware.describe(),
            "gpu": hardware.device == "cuda", "memory_gb": round(hardware.memory_gb, 1),
            "preset": preset_name(hardware), "mode": resolve_mode(), "versions": versions}


def version_problems() -> list[str]:
    """Installed versions that differ from brandkit's pins (the usual cause of errors after a Colab update)."""
    import re

    requirements = importlib.metadata.requires("brandkit") or []
    problems = []
    for requirement in requirements:
        match = re.match(r"^([A-Za-z0-9_.\-]+)==([^;\s]+)(?:\s*;\s*extra\s*==\s*\"(\w+)\")?", requirement)
        if not match or match.group(3) == "cpu":
            continue
        name, wanted = match.group(1), match.group(2)
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            if match.group(3) is None:
                problems.append(f"{name} is not installed (brandkit wants {wanted})")
            continue
        if installed != wanted:
            problems.append(f"{name} {installed} is installed, brandkit is tested with {wanted}: "
                            f"restart the runtime after installing, or pip install '{name}=={wanted}'")
    return problems


def explain_preset() -> str:
    """Which hardware preset training will use, and why, in a sentence or two."""
    from .config import TrainConfig
    from .hardware import choose_backend, detect_hardware
    from .presets import resolve_config

    hardware = detect_hardware()
    config, preset, why = resolve_config(TrainConfig(), hardware)
    backend = choose_backend(hardware, "auto")
    return (f"Training will use the {preset!r} preset and the {backend} backend: {'; '.join(why)}. "
            f"Precision {config.dtype}, 4-bit loading {'on' if config.load_in_4bit else 'off'}, gradient "
            f"checkpointing {config.gradient_checkpointing}, batch {config.per_device_train_batch_size} x "
            f"{config.gradient_accumulation_steps}.")


def describe_mode(mode: str | None = None) -> str:
    """What a mode trains, on this machine, and where its run folder is: one sentence."""
    mode = resolve_mode(mode)
    config = course_config(mode)
    from .models import model_title

    steps = (f"{config.train.max_steps} training steps (a rehearsal: the text stays barely changed)"
             if config.train.max_steps > 0 else
             "the model's own number of epochs, with a validation point and a checkpoint every tenth of the run")
    return (f"{mode}: {model_title(config.train.base_model)}, {steps}; run folder {config.out_dir} "
            f"(every notebook reads BRANDKIT_MODE, or its own MODE line).")


OWN_BRAND_KIT = """# Your brand kit: rewrite every TODO, then set BRAND to this folder in each notebook's setup cell.
# data/samples/ember-coffee/brand.yaml is a complete example. Only name is required.
name: "TODO: Your Business Name"
language: en
sells: "TODO: what you sell, in one sentence."
voice: |
  TODO: how you write: tone, sentence length, "you" and "we", exclamation marks, emoji,
  favourite phrases, how replies end.
preferred_terms: []     # TODO: words you like to use
banned_terms: []        # TODO: words you never use
sign_off: "TODO: how newsletters and replies end"
staff: []               # first names who sign messages: kept by redaction
address: ""             # your public business address: kept by redaction
website: ""
sends_from: []          # the addresses you send mail from ("hello@shop.example") or "@shop.example"
eval_prompts:           # requests you really need written, each with the answer you would send
  - kind: email         # email, blog, product, chat or manual
    prompt: "TODO: Write an email announcing our spring opening hours."
    reference: |
      TODO: the email you actually sent, or would send.
"""


def own_folder() -> str:
    """Where your own brand kit goes: Google Drive on Colab (it outlives the runtime), else data/mine."""
    if on_colab() and os.path.isdir(os.path.join(DRIVE, "MyDrive")):
        return os.path.join(DRIVE, "MyDrive", "brandkit", "mine")
    return os.path.join("data", "mine")


def start_brand_kit(folder: str | None = None) -> str:
    """A folder for your own brand kit: brand.yaml (a template to rewrite) and an empty exports/ folder.

    An existing brand.yaml is never overwritten. Returns the folder, ready for BRAND.
    """
    from pathlib import Path

    target = Path(folder or own_folder())
    (target / "exports").mkdir(parents=True, exist_ok=True)
    if not (target / "brand.yaml").exists():
        (target / "brand.yaml").write_text(OWN_BRAND_KIT, encoding="utf-8")
    return str(target)


def brand_kit_todo(brand) -> list[str]:
    """What a brand kit (a folder, a slug or a loaded BrandKit) still lacks before it can teach a model its voice."""
    from .config import BrandKit

    kit = brand if isinstance(brand, BrandKit) else BrandKit.load(brand)
    todo = [f"{key}: still the template's text" for key in ("name", "sells", "voice", "sign_off")
            if "TODO" in str(getattr(kit, key))]
    todo += [f"{key}: empty" for key in ("voice", "sign_off", "preferred_terms", "banned_terms")
             if not getattr(kit, key)]
    if not kit.eval_prompts or any("TODO" in p.prompt or "TODO" in p.reference for p in kit.eval_prompts):
        todo.append("eval_prompts: add requests you really need, each with the answer you would send")
    if kit.root is not None and not any(p.is_file() for p in (kit.root / "exports").rglob("*")):
        todo.append(f"exports: {kit.root / 'exports'} holds no files yet")
    return todo
