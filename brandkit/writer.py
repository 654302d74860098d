"""Writer: one call to write with a tuned model, `brandkit.write(request, run_dir=...)`.

It loads the run's adapter once (brandkit.models.load_tuned; later calls reuse it), asks with the
system prompt the adapter was trained with (recorded in its brandkit_train.yaml), and generates
as compare does (brandkit.compare.generate), so a draft written here is what the tuned contender
would have written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .config import BrandkitError, CompareConfig

_LOADED: dict[tuple[str, int], tuple[Any, Any]] = {}  # one tuned model at a time: (adapter, its mtime) -> model


def adapter_folder(run_dir: str | Path) -> Path:
    """The adapter of a run folder (its train/adapter), or the folder itself when it is an adapter."""
    path = Path(run_dir)
    for candidate in (path, path / "train" / "adapter"):
        if (candidate / "adapter_config.json").is_file():
            return candidate
    raise BrandkitError(f"no trained adapter in {path} (nor in {path / 'train' / 'adapter'}): "
                        "train first (notebook 03, or `brandkit train --out <run folder>`)")


def trained_system_prompt(adapter: Path) -> str:
    """The system prompt the adapter was trained with ("" when it had none, or the run predates the record)."""
    import yaml

    saved = adapter / "brandkit_train.yaml"
    data = yaml.safe_load(saved.read_text(encoding="utf-8")) if saved.is_file() else {}
    return str((data or {}).get("system_prompt") or "")


def tuned_model(run_dir: str | Path) -> tuple[Any, Any]:
    """The run's tuned model and tokenizer, loaded once; a retrained adapter (a newer file) is loaded again."""
    from .models import load_tuned

    adapter = adapter_folder(run_dir)
    weights = adapter / "adapter_model.safetensors"
    key = (str(adapter.resolve()), weights.stat().st_mtime_ns if weights.exists() else 0)
    if key not in _LOADED:
        _LOADED.clear()  # one model in memory at a time
        _LOADED[key] = load_tuned(adapter)
    return _LOADED[key]


def write(request: str, run_dir: str | Path = "runs/demo", *, max_new_tokens: int = 384,
          temperature: float = 0.7, top_p: float = 0.9, repetition_penalty: float = 1.1, seed: int = 3407,
          system_prompt: str | None = None) -> str:
    """A draft for `request`, written by the tuned model of `run_dir` (a run folder, or an adapter folder).

    The request is asked with the system prompt the adapter was trained with, unless `system_prompt`
    is given; `temperature=0` writes greedily (the same draft every time). Sampling uses `seed`, so
    the same call gives the same draft. The model is loaded on the first call and kept for the next.

        >>> import brandkit
        >>> print(brandkit.write("Write a short email announcing our new autumn blend.", run_dir="runs/demo"))
    """
    from .compare.contenders import EvalItem
    from .compare.generate import generate

    if not request.strip():
        raise BrandkitError("write needs a request, such as 'Write an email announcing our opening hours.'")
    model, tokenizer = tuned_model(run_dir)
    system = trained_system_prompt(adapter_folder(run_dir)) if system_prompt is None else system_prompt
    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": request.strip()}]
    config = CompareConfig(max_new_tokens=max_new_tokens, do_sample=temperature > 0, temperature=temperature,
                           top_p=top_p, repetition_penalty=repetition_penalty, samples_per_prompt=1, seed=seed)
    [[answer]] = generate(model, tokenizer, [EvalItem("write", "request", "write", messages)], config, adapter=True,
                          batch_size=1, progress=False)
    return answer.text
