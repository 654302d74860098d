"""Export a trained adapter: a merged 16-bit model, GGUF, an Ollama Modelfile.

The adapter folder that `brandkit.train` writes is already the main product (small, loads on top of
the base model). These turn it into what other tools run:

- `merge_adapter`: the adapter folded into the base model, loaded in 16 bits (never onto the 4-bit
  weights it may have been trained on), saved as one plain transformers folder;
- `export_gguf`: a GGUF file for llama.cpp and Ollama. f32/f16/bf16/q8_0 come from llama.cpp's own
  converter (`convert_hf_to_gguf.py`, taken from the llama-cpp-python source distribution on PyPI;
  nothing is compiled), on any machine, offline once fetched; the k-quants (q4_k_m ...) need
  llama.cpp's compiled quantizer, which Unsloth builds on a GPU runtime;
- `write_modelfile`: an Ollama Modelfile naming that file, with the tuned model's chat template and stop tokens.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from .config import BrandKit, BrandkitError

LLAMA_CPP_PYTHON = "0.3.36"  # the sdist whose vendor/llama.cpp holds the converter (and its gguf-py)
CONVERTER_TYPES = ("f32", "f16", "bf16", "q8_0")  # what convert_hf_to_gguf.py writes by itself
CONVERTER_FILES = ("convert_hf_to_gguf.py", "conversion", "gguf-py", "LICENSE")
FORMATS = ("adapter", "merged", "gguf", "modelfile")


# --- merge -------------------------------------------------------------------------------------------

def trained_base(adapter_dir: str | Path) -> str:
    """The base model an adapter was trained on: brandkit's saved config, else PEFT's adapter_config.json."""
    import yaml

    folder = Path(adapter_dir)
    if (folder / "brandkit_train.yaml").exists():
        saved = yaml.safe_load((folder / "brandkit_train.yaml").read_text(encoding="utf-8")) or {}
        if saved.get("config", {}).get("base_model"):
            return saved["config"]["base_model"]
    try:
        return json.loads((folder / "adapter_config.json").read_text())["base_model_name_or_path"]
    except (OSError, KeyError, ValueError):
        raise BrandkitError(f"{folder} is not an adapter folder (no brandkit_train.yaml or adapter_config.json)") from None


def sixteen_bit_base(base: str) -> str:
    """The same model in 16 bits: Unsloth publishes its 4-bit uploads as <model>-bnb-4bit (or -unsloth-bnb-4bit).

    A LoRA adapter trained on 4-bit weights is merged onto the 16-bit model it was quantized from:
    merging into 4-bit weights either fails ("You cannot cast a bitsandbytes model in a new dtype")
    or rounds the merged weights to 4 bits again.
    """
    for suffix in ("-unsloth-bnb-4bit", "-bnb-4bit"):
        if base.endswith(suffix):
            sixteen = base[: -len(suffix)]
            if Path(base).exists() and not Path(sixteen).exists():
                raise BrandkitError(f"{base} holds 4-bit weights and there is no 16-bit copy at {sixteen} to "
                                    "merge onto: pass base_model= (or --base-model) naming the 16-bit model")
            return sixteen
    config = Path(base) / "config.json"
    if config.is_file() and "bitsandbytes" in json.dumps(json.loads(config.read_text()).get("quantization_config", {})):
        raise BrandkitError(f"{base} holds bitsandbytes-quantized weights: merge onto the 16-bit model it was "
                            "made from, with base_model= (or --base-model)")
    return base


def merge_adapter(adapter_dir: str | Path, out_dir: str | Path, dtype: str = "float16",
                  base_model: str | None = None) -> Path:
    """The adapter folded into the base model loaded in 16 bits, saved with its tokenizer (no PEFT needed to run it)."""
    import torch

    from .hardware import detect_hardware
    from .models import load_tuned, torch_dtype

    base = base_model or sixteen_bit_base(trained_base(adapter_dir))
    on_gpu = detect_hardware().device == "cuda"
    # merged in float32 on a CPU (exact, and CPUs are slow in float16); in the target precision on a GPU
    model, tokenizer = load_tuned(adapter_dir, base_model=base, dtype=dtype if on_gpu else "float32")
    merged = model.merge_and_unload()
    if getattr(merged, "is_quantized", False) or getattr(merged.config, "quantization_config", None):
        raise BrandkitError(f"the base model {base!r} loaded quantized; merge onto its 16-bit version with base_model=")
    merged = merged.to(torch_dtype(dtype))
    out = Path(out_dir)
    merged.save_pretrained(str(out), safe_serialization=True)
    tokenizer.save_pretrained(str(out))
    plain_byte_level_bpe(out)
    del merged, model
    if on_gpu:
        torch.cuda.empty_cache()
    return out


def plain_byte_level_bpe(folder: str | Path) -> bool:
    """Write a byte-level BPE tokenizer (GPT-2 style, as SmolLM2's) in its plain form; True if it changed.

    transformers' GGUF reader (how brandkit's offline SmolLM2 was made) writes such a tokenizer with
    SentencePiece's byte fallback and decoder added. It tokenizes the same, but llama.cpp's converter
    then takes it for a Llama SentencePiece vocabulary and writes a tokenizer llama.cpp and Ollama
    would split text with wrongly. Without the byte fallback (a byte-level vocabulary never needs it)
    and with the ByteLevel decoder, the converter recognises the model's own pre-tokenizer.
    """
    path = Path(folder) / "tokenizer.json"
    if not path.is_file():
        return False
    data = json.loads(path.read_text(encoding="utf-8"))
    pre = data.get("pre_tokenizer") or {}
    kinds = {pre.get("type")} | {p.get("type") for p in pre.get("pretokenizers", [])}
    model = data.get("model", {})
    if model.get("type") != "BPE" or "ByteLevel" not in kinds or not model.get("byte_fallback"):
        return False
    model["byte_fallback"] = False
    data["decoder"] = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return True


# --- GGUF ---------------------------------------------------------------------------------------------

def converter_dir() -> Path:
    """Where llama.cpp's converter is kept: BRANDKIT_LLAMA_CPP, else inside this Python environment."""
    return Path(os.environ.get("BRANDKIT_LLAMA_CPP") or Path(sys.prefix) / "share" / "brandkit" /
                f"llama.cpp-{LLAMA_CPP_PYTHON}")


def fetch_converter(sdist: str | Path | None = None, say=print) -> Path:
    """llama.cpp's convert_hf_to_gguf.py and its gguf-py, from the llama-cpp-python sdist (fetched once with pip).

    Only Python files are taken from the archive; llama.cpp itself is never built. sdist: a copy of
    llama_cpp_python-<version>.tar.gz already on disk, instead of fetching it.
    """
    target = converter_dir()
    if (target / "convert_hf_to_gguf.py").is_file():
        return target
    with tempfile.TemporaryDirectory() as tmp:
        if sdist is None:
            say(f"Fetching llama.cpp's GGUF converter (llama-cpp-python {LLAMA_CPP_PYTHON}'s source, about 75 MB) "
                f"into {target}")
            done = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-binary", ":all:",
                                   "--no-deps", f"llama-cpp-python=={LLAMA_CPP_PYTHON}", "--dest", tmp],
                                  capture_output=True, text=True)
            archives = list(Path(tmp).glob("llama_cpp_python-*.tar.gz"))
            if done.returncode != 0 or not archives:
                raise BrandkitError("could not fetch llama.cpp's converter (llama-cpp-python's source from PyPI; "
                                    f"needs the registry once): {(done.stderr or done.stdout).strip()[-800:]}")
        else:
            archives = [Path(sdist)]
        staging = Path(tmp) / "converter"
        with tarfile.open(archives[0]) as archive:
            prefix = f"{archives[0].name[:-len('.tar.gz')]}/vendor/llama.cpp/"
            members = [m for m in archive.getmembers() if m.name.startswith(prefix)
                       and m.name[len(prefix):].split("/")[0] in CONVERTER_FILES and (m.isfile() or m.isdir())]
            for member in members:
                member.name = member.name[len(prefix):]
            try:
                archive.extractall(staging, members=members, filter="data")
            except TypeError:  # Python before 3.10.12 / 3.11.4: no filters (the members are checked above)
                archive.extractall(staging, members=members)
        if not (staging / "convert_hf_to_gguf.py").is_file():
            raise BrandkitError(f"llama-cpp-python {LLAMA_CPP_PYTHON}'s source has no vendor/llama.cpp/convert_hf_to_gguf.py")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(target, ignore_errors=True)
        shutil.move(str(staging), str(target))
    return target


def convert_to_gguf(model_dir: str | Path, outfile: str | Path, outtype: str = "q8_0", fetch: bool = True) -> Path:
    """A transformers folder to one GGUF file with llama.cpp's own converter (CPU, no build)."""
    if outtype not in CONVERTER_TYPES:
        raise BrandkitError(f"llama.cpp's converter writes {', '.join(CONVERTER_TYPES)}, not {outtype!r}")
    folder = fetch_converter() if fetch else converter_dir()
    if not (folder / "convert_hf_to_gguf.py").is_file():
        raise BrandkitError(f"llama.cpp's converter is not in {folder}: run `make setup`, or "
                            "brandkit.export.fetch_converter() once with access to PyPI")
    plain_byte_level_bpe(model_dir)
    outfile = Path(outfile)
    outfile.parent.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([sys.executable, str(folder / "convert_hf_to_gguf.py"), str(model_dir),
                           "--outfile", str(outfile), "--outtype", outtype],
                          capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if done.returncode != 0 or not outfile.is_file():
        raise BrandkitError(f"llama.cpp's converter failed on {model_dir}:\n{(done.stderr or done.stdout)[-2000:]}")
    return outfile


def gguf_kwargs(quantization: str) -> dict[str, Any]:
    """Keywords for Unsloth's save_pretrained_gguf (checked against the installed signature in tests)."""
    return {"quantization_method": quantization}


def export_gguf(adapter_dir: str | Path, out_dir: str | Path, quantization: str = "q8_0",
                merged_dir: str | Path | None = None, name: str = "model") -> Path:
    """One GGUF file in out_dir (its path is returned), for llama.cpp and Ollama.

    f32, f16, bf16 and q8_0 (the default: half of f16's size, close to its quality) go through llama.cpp's
    converter on any machine, from merged_dir or a merge made here. The k-quants (q4_k_m: a quarter of
    f16) need llama.cpp's compiled quantizer: Unsloth builds it on a CUDA GPU (with a network).
    """
    out = Path(out_dir)
    quantization = quantization.lower()
    if quantization in CONVERTER_TYPES:
        merged = Path(merged_dir) if merged_dir else merge_adapter(adapter_dir, out / "merged")
        return convert_to_gguf(merged, out / f"{name}-{quantization}.gguf", quantization)
    from .hardware import detect_hardware

    hardware = detect_hardware()
    if hardware.device != "cuda" or not hardware.unsloth:
        raise BrandkitError(
            f"{quantization} needs llama.cpp's compiled quantizer, which Unsloth builds on a CUDA GPU (with a network). "
            f"This machine has {hardware.describe()}: export with quantization='q8_0' (or f16) here, through "
            "llama.cpp's converter, or run 05_export on a GPU runtime.")
    from unsloth import FastLanguageModel

    model, tokenizer = FastLanguageModel.from_pretrained(str(adapter_dir), load_in_4bit=False)
    unsloth_dir = out / "unsloth"  # Unsloth writes the merged model here and the GGUF into unsloth_gguf/
    result = model.save_pretrained_gguf(str(unsloth_dir), tokenizer, **gguf_kwargs(quantization))
    files = [Path(f) for f in result.get("gguf_files", [])] if isinstance(result, dict) else []
    if not files:  # when it does not say: whatever it wrote
        files = sorted([*unsloth_dir.glob("*.gguf"), *Path(f"{unsloth_dir}_gguf").glob("*.gguf")],
                       key=lambda p: p.stat().st_mtime)
    wanted = [f for f in files if quantization.upper() in f.name.upper()] or files
    if not wanted:
        raise BrandkitError(f"Unsloth's save_pretrained_gguf wrote no .gguf file for {out}")
    target = out / f"{name}-{quantization}.gguf"
    out.mkdir(parents=True, exist_ok=True)
    if wanted[-1].resolve() != target.resolve():
        shutil.move(str(wanted[-1]), str(target))
    return target


# --- Ollama -------------------------------------------------------------------------------------------

# Go templates for Ollama, keyed by the chat format a tokenizer's template produces.
OLLAMA_TEMPLATES = {
    "chatml": ('{{- if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}'
               '{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}'
               '<|im_start|>assistant\n'),
    "llama3": ('{{- if .System }}<|start_header_id|>system<|end_header_id|>\n\n{{ .System }}<|eot_id|>{{ end }}'
               '{{- range .Messages }}<|start_header_id|>{{ .Role }}<|end_header_id|>\n\n{{ .Content }}<|eot_id|>'
               '{{ end }}<|start_header_id|>assistant<|end_header_id|>\n\n'),
    "gemma": ('{{- range .Messages }}<start_of_turn>{{ if eq .Role "assistant" }}model{{ else }}{{ .Role }}{{ end }}\n'
              '{{ .Content }}<end_of_turn>\n{{ end }}<start_of_turn>model\n'),
}
FORMAT_MARKERS = {"chatml": "<|im_start|>", "llama3": "<|start_header_id|>", "gemma": "<start_of_turn>"}


def chat_format(tokenizer) -> str:
    probe = tokenizer.apply_chat_template([{"role": "user", "content": "x"}], tokenize=False,
                                          add_generation_prompt=True)
    for form, marker in FORMAT_MARKERS.items():
        if marker in probe:
            return form
    raise BrandkitError("this model's chat template is not one the Modelfile writer knows (ChatML, Llama 3, "
                        "Gemma); write the TEMPLATE by hand from tokenizer.chat_template")


def ollama_modelfile(model_dir: str | Path, gguf_name: str, brand: BrandKit | None = None,
                     temperature: float = 0.7, system: str | None = None) -> str:
    """An Ollama Modelfile with the model's own chat template and every end-of-turn token as a stop.

    Its SYSTEM is the prompt the adapter was trained with (recorded in brandkit_train.yaml), else the
    brand kit's."""
    from .chat import end_of_turn_ids
    from .models import load_tokenizer

    tokenizer = load_tokenizer(str(model_dir))
    form = chat_format(tokenizer)
    stops = sorted({tokenizer.convert_ids_to_tokens(i) for i in end_of_turn_ids(tokenizer)}
                   | {FORMAT_MARKERS[form]})
    lines = [f"FROM ./{gguf_name}", f'TEMPLATE """{OLLAMA_TEMPLATES[form]}"""']
    lines += [f'PARAMETER stop "{stop}"' for stop in stops]
    lines.append(f"PARAMETER temperature {temperature}")
    system = system if system is not None else trained_prompt(model_dir)
    if system is None and brand:
        system = brand.system_prompt
    if system:
        lines.append('SYSTEM """' + system.replace('"""', "'''") + '"""')
    return "\n".join(lines) + "\n"


def trained_prompt(folder: str | Path) -> str | None:
    """The system prompt recorded beside an adapter at training time (None for adapters trained before it was)."""
    import yaml

    path = Path(folder) / "brandkit_train.yaml"
    saved = yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else None
    return saved.get("system_prompt") if isinstance(saved, dict) else None


def write_modelfile(model_dir: str | Path, out_path: str | Path, gguf_name: str = "model.gguf",
                    brand: BrandKit | None = None, system: str | None = None) -> Path:
    """The Modelfile at out_path; gguf_name is the GGUF file's name, next to it (FROM ./<gguf_name>)."""
    path = Path(out_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(ollama_modelfile(model_dir, gguf_name, brand, system=system), encoding="utf-8")
    return path


def how_to_run(gguf: Path, modelfile: Path | None = None, model_name: str = "my-brand") -> str:
    """The commands that run an exported GGUF: Ollama, llama.cpp, and transformers from Python."""
    lines = []
    if modelfile is not None:
        lines += [f"cd {modelfile.parent}", f"ollama create {model_name} -f {modelfile.name}",
                  f'ollama run {model_name} "Write a short welcome email for a new customer."', ""]
    lines += [f'llama-cli -m {gguf} -cnv          # llama.cpp', "",
              "python -c \"from transformers import AutoModelForCausalLM; "
              f"AutoModelForCausalLM.from_pretrained('{gguf.parent}', gguf_file='{gguf.name}')\""]
    return "\n".join(lines)


def export_all(adapter_dir: str | Path, out_dir: str | Path, formats: tuple[str, ...] = FORMATS,
               quantization: str = "q8_0", brand: BrandKit | None = None, name: str = "model",
               base_model: str | None = None, say=print) -> dict[str, Path]:
    """Every format asked for, in out_dir: adapter/, merged/, <name>-<quantization>.gguf, Modelfile."""
    unknown = set(formats) - set(FORMATS)
    if unknown:
        raise BrandkitError(f"unknown export format(s) {', '.join(sorted(unknown))}: choose from {', '.join(FORMATS)}")
    adapter_dir, out = Path(adapter_dir), Path(out_dir)
    if not (adapter_dir / "adapter_config.json").exists():
        raise BrandkitError(f"no trained adapter in {adapter_dir}: train first")
    written: dict[str, Path] = {}
    if "adapter" in formats:
        written["adapter"] = Path(shutil.copytree(adapter_dir, out / "adapter", dirs_exist_ok=True))
        say(f"adapter: {written['adapter']}")
    if "merged" in formats or ("gguf" in formats and quantization.lower() in CONVERTER_TYPES):
        written["merged"] = merge_adapter(adapter_dir, out / "merged", base_model=base_model)
        say(f"merged 16-bit model: {written['merged']}")
    if "gguf" in formats:
        written["gguf"] = export_gguf(adapter_dir, out, quantization, merged_dir=written.get("merged"), name=name)
        say(f"GGUF ({quantization}): {written['gguf']} ({written['gguf'].stat().st_size / 2**20:.0f} MB)")
    if "modelfile" in formats:
        gguf_name = written["gguf"].name if "gguf" in written else f"{name}-{quantization.lower()}.gguf"
        written["modelfile"] = write_modelfile(written.get("merged", adapter_dir), out / "Modelfile", gguf_name, brand,
                                               system=trained_prompt(adapter_dir))
        say(f"Ollama Modelfile: {written['modelfile']}")
    if "gguf" in written:
        say("\nRun it:\n" + how_to_run(written["gguf"], written.get("modelfile")))
    return written
