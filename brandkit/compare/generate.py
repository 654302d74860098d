"""Generate: batched answers (left padding), streamed answers for the playground, held-out perplexity.

One model is in memory: the base with the adapter loaded, switched off for the generic contenders
and on for the tuned one. All contenders use the same sampling settings and seeds.
"""

from __future__ import annotations

import json
import math
import os
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NamedTuple

from ..config import CompareConfig
from ..chat import end_of_turn_ids, pad_batch, tokenize_example
from .contenders import EvalItem


class adapter_switch:
    """Context: the PEFT adapter on (tuned) or off (the generic contenders)."""

    def __init__(self, model, enabled: bool):
        self.model, self.enabled, self.context = model, enabled, None

    def __enter__(self):
        if not self.enabled and hasattr(self.model, "disable_adapter"):
            self.context = self.model.disable_adapter()
            self.context.__enter__()

    def __exit__(self, *exc):
        if self.context is not None:
            self.context.__exit__(*exc)


_adapter = adapter_switch  # the old private name


def can_fold(model) -> bool:
    """Whether folding the adapter into the weights is exact enough: a PEFT model in fp32 on a CPU.

    In bf16 most of a small update is rounded away when it is added to a weight; a 4-bit weight
    (Unsloth on a GPU) cannot take it at all."""
    import torch

    return (hasattr(model, "merge_adapter") and model.device.type == "cpu"
            and all(p.dtype == torch.float32 for p in model.parameters()))


class folded_adapter:
    """Context: with `enabled`, the adapter's update folded into copies of the base weights (PEFT's safe
    merge), so that each projection is one matmul; on leaving, the base model's own weight tensors are
    put back.

    Why: unfolded, every LoRA projection of every decoding step adds two thin matmuls, a scaling and
    an add: SmolLM2 has 210 of them. In fp32 on 2 cores (avx2), 32 greedy answers of 64 tokens took
    14.9-18.6 s unfolded and 13.1-13.2 s folded (the adapter switched off: 12.5-13.9 s), the same
    tokens; the demo's 32 tuned answers (sampled, up to 384 tokens) 82.0-82.4 s unfolded and 71.0-71.8
    s folded, the same text 32 of 32. The originals come back as they were, so the generic contenders
    and the perplexity see the base model bit for bit. Where `can_fold` says no, the adapter runs
    unfolded.
    """

    def __init__(self, model, enabled: bool):
        self.model, self.enabled, self.originals = model, enabled, None

    def __enter__(self):
        if self.enabled and can_fold(self.model):
            from peft.tuners.tuners_utils import BaseTunerLayer

            layers = [m.get_base_layer() for m in self.model.modules() if isinstance(m, BaseTunerLayer)]
            self.originals = [(layer, layer.weight.data) for layer in layers]
            self.model.merge_adapter(safe_merge=True)  # into copies: the tensors saved above stay untouched
        return self

    def __exit__(self, *exc):
        if self.originals is not None:
            self.model.unmerge_adapter()  # PEFT's own bookkeeping (merged flags); the copies are then dropped
            for layer, data in self.originals:
                layer.weight.data = data
            self.originals = None


class CandidateSampler:
    """A logits processor that draws the next token as transformers' sampling does with temperature,
    top-k and top-p, and leaves only that token in the row, so that generate then runs greedily.

    Why: transformers' top-p warper sorts the whole vocabulary (49,152 tokens for SmolLM2) and
    torch.multinomial draws an exponential for every entry, though after top-k only k tokens can be
    drawn: 84 ms a decoding step for 32 rows on 2 cores, as long as the model's own forward pass.
    Drawing among the top k gives the same distribution in about 2 ms (tests/test_compare.py checks
    it against transformers' own warpers).
    """

    def __init__(self, temperature: float, top_k: int, top_p: float):
        self.temperature, self.top_k, self.top_p = temperature, top_k, top_p

    def candidates(self, scores):
        """Per row, the tokens that can be drawn (best first) and their probabilities."""
        import torch

        values, tokens = torch.topk(scores / self.temperature, min(self.top_k, scores.shape[-1]), dim=-1)
        probs = values.softmax(dim=-1)
        # top-p keeps a token while the candidates ranked above it hold less than top_p of the mass
        # (transformers' rule, written for a descending order; the best token always stays)
        above = probs.cumsum(dim=-1) - probs
        probs = probs.masked_fill(above >= self.top_p, 0.0)
        return tokens, probs / probs.sum(dim=-1, keepdim=True)

    def __call__(self, input_ids, scores):
        import torch

        tokens, probs = self.candidates(scores)
        chosen = tokens.gather(-1, torch.multinomial(probs, 1))
        return torch.full_like(scores, float("-inf")).scatter_(-1, chosen, 0.0)


def sampling_kwargs(config: CompareConfig) -> dict:
    """generate's keywords for the compare settings: greedy, or greedy over a CandidateSampler's draw."""
    kwargs = {"max_new_tokens": config.max_new_tokens, "do_sample": False,
              "repetition_penalty": config.repetition_penalty}
    if config.do_sample:
        from transformers import LogitsProcessorList

        kwargs["logits_processor"] = LogitsProcessorList([CandidateSampler(config.temperature, config.top_k,
                                                                           config.top_p)])
    return kwargs


class Answer(NamedTuple):
    text: str
    finished: bool  # the model ended the answer itself, before max_new_tokens cut it


def ended(new_tokens, stop_ids: list[int]) -> list[bool]:
    """Per generated row: whether a stop token came, so the model ended it before the token limit."""
    import torch

    return torch.isin(new_tokens, torch.tensor(stop_ids, device=new_tokens.device)).any(dim=1).tolist()


def answer_text(decoded: str) -> str:
    """The decoded answer without the half character a cut can leave: max_new_tokens may stop inside
    an emoji's bytes, which decode to U+FFFD at the very end."""
    return decoded.strip().rstrip("\ufffd").rstrip()


def shared_prefixes(rows: list[list[int]], boundaries: set[int], min_tokens: int = 64) -> list[int]:
    """Per row, how many of its first tokens another row has too, cut back to the end of a turn (0 if
    fewer than min_tokens): the prompted contender's requests of one kind share the style guide and
    the same few-shot examples, hundreds of tokens that need reading once, not once per request."""
    order = sorted(range(len(rows)), key=lambda i: rows[i])  # shared prefixes end up side by side
    common = [0] * len(rows)
    for a, b in zip(order, order[1:]):
        n = len(os.path.commonprefix([rows[a], rows[b]]))  # commonprefix compares any sequences, not only paths
        common[a], common[b] = max(common[a], n), max(common[b], n)
    cuts = []
    for row, n in zip(rows, common, strict=True):
        n = min(n, len(row) - 1)  # at least one token of the request stays to be read
        while n > 0 and row[n - 1] not in boundaries:
            n -= 1
        cuts.append(n if n >= min_tokens else 0)
    return cuts


def prefixed_batch(model, rows: list[list[int]], cuts: list[int], prefixes: dict, pad_id: int, room: int):
    """A batch that starts from cached prefixes: each row's prefix is read once (kept in `prefixes`),
    and its keys and values are kept once for all the rows that share it (models.shared_prefix_cache).

    Row layout: [pad] prefix [pad] rest, with the attention mask zero on the pads, so every token
    keeps the position it has in the unsplit prompt (generate counts positions from the mask).
    """
    import torch

    from ..models import shared_prefix_cache

    starts = [tuple(row[:cut]) for row, cut in zip(rows, cuts, strict=True)]
    for start in starts:
        if start and start not in prefixes:
            out = model(input_ids=torch.tensor([start], device=model.device), use_cache=True, logits_to_keep=1)
            # in fp32 once, as the shared-prefix attention reads them at every step (bf16 would be converted each time)
            prefixes[start] = [(k.float(), v.float()) for k, v, *_ in out.past_key_values]
    longest_prefix = max(cuts)
    longest_rest = max(len(row) - cut for row, cut in zip(rows, cuts, strict=True))
    ids, mask = [], []
    for row, cut in zip(rows, cuts, strict=True):
        rest = row[cut:]
        front, middle = longest_prefix - cut, longest_rest - len(rest)
        ids.append([pad_id] * front + row[:cut] + [pad_id] * middle + rest)
        mask.append([0] * front + [1] * cut + [0] * middle + [1] * len(rest))
    sharing = {start: [n for n, other in enumerate(starts) if other == start] for start in starts if start}
    cache = shared_prefix_cache(room, longest_prefix, [(members, prefixes[start]) for start, members in sharing.items()])
    inputs = {"input_ids": torch.tensor(ids, device=model.device),
              "attention_mask": torch.tensor(mask, device=model.device)}
    return inputs, cache


def token_batches(order: list[int], widths: list[int], room: int, max_tokens: int, max_rows: int,
                  samples: int = 1) -> list[list[int]]:
    """Consecutive runs of `order`, each as long as its rows fit: rows x (widest row + room) within
    max_tokens, at most max_rows items (each item is `samples` rows). A row's width is what its own
    cache holds: the prompt, or the part after a start it shares (kept once, see prefixed_batch)."""
    batches: list[list[int]] = []
    batch: list[int] = []
    widest = 0
    for i in order:
        wider = max(widest, widths[i])
        if batch and (len(batch) == max_rows or (len(batch) + 1) * samples * (wider + room) > max_tokens):
            batches.append(batch)
            batch, wider = [], widths[i]
        batch.append(i)
        widest = wider
    return batches + [batch] if batch else batches


def generate(model, tokenizer, items: list[EvalItem], config: CompareConfig, adapter: bool,
             batch_size: int | None = None, progress: bool = True, label: str | None = None,
             share_prefixes: bool = True) -> list[list[Answer]]:
    """Answers for every item (config.samples_per_prompt each), batched with left padding.

    Items are batched in order of prompt length, so a batch pads its prompts little (the prompted
    contender's few-shot prompts range from a few hundred to over a thousand tokens), as many to a
    batch as config.batch_tokens holds (at most `batch_size`, default config.batch_size); the answers
    come back in the items' order. On a CPU, a prompt start that several items share (the prompted
    contender's guide and examples) is read once and its cache reused (`share_prefixes`).
    """
    import torch
    from tqdm.auto import tqdm

    from ..models import growing_cache

    tokenizer.padding_side = "left"
    stop_ids = end_of_turn_ids(tokenizer)
    batch_size = batch_size or config.batch_size
    label = label or ("tuned" if adapter else "base")
    # tokenized once: the lengths order the batches, and each batch is padded from these ids
    encoded = [tokenizer(tokenizer.apply_chat_template(item.messages, tokenize=False, add_generation_prompt=True),
                         add_special_tokens=False) for item in items]
    rows = [list(e["input_ids"]) for e in encoded]
    # on a GPU reading a prompt is cheap, and Unsloth's fast generation keeps its own cache
    reuse = share_prefixes and model.device.type == "cpu" and config.samples_per_prompt == 1
    cuts = shared_prefixes(rows, set(stop_ids)) if reuse else [0] * len(rows)
    # by the length each row holds itself (a shared start is kept once, whatever its length): a batch pads little
    widths = [len(row) - cut for row, cut in zip(rows, cuts, strict=True)]
    order = sorted(range(len(items)), key=lambda i: widths[i])
    batches = token_batches(order, widths, config.max_new_tokens, config.batch_tokens, batch_size,
                            config.samples_per_prompt)
    prefixes: dict = {}  # prefix ids -> its keys and values per layer, for this call's adapter state

    def new_cache():
        # in fp32 on a CPU, keys and values written into room kept for the answer instead of copying the
        # whole cache at every step (measured in benchmarks/bench_generate.py); in bf16 the attention's
        # matmuls copy such a view, so there the plain cache is as fast. None: generate's own (on a GPU,
        # Unsloth's fast generation keeps its own)
        cpu_fp32 = model.device.type == "cpu" and model.dtype == torch.float32
        return growing_cache(config.max_new_tokens) if cpu_fp32 else None

    answered: dict[int, list[Answer]] = {}
    first = 0  # the batch's place in the order: its seed
    with folded_adapter(model, adapter):
        for batch in tqdm(batches, desc=f"Generating ({label})", disable=not progress):
            start, first = first, first + len(batch)
            with torch.inference_mode(), adapter_switch(model, adapter):
                if any(cuts[i] for i in batch):
                    inputs, cache = prefixed_batch(model, [rows[i] for i in batch], [cuts[i] for i in batch], prefixes,
                                                   tokenizer.pad_token_id, config.max_new_tokens)
                else:
                    inputs = tokenizer.pad([encoded[i] for i in batch], return_tensors="pt").to(model.device)
                    cache = new_cache()
                    # several samples of a prompt: its row repeated (generate's num_return_sequences is for its
                    # own sampling, and the draw here is CandidateSampler's)
                    inputs = {key: value.repeat_interleave(config.samples_per_prompt, dim=0) for key, value in inputs.items()}
                torch.manual_seed(config.seed + start)  # the same seed for every contender, batch by batch
                extra = {"past_key_values": cache} if cache is not None else {}
                generated = model.generate(**inputs, **extra, **sampling_kwargs(config), eos_token_id=stop_ids,
                                           pad_token_id=tokenizer.pad_token_id)
            new_tokens = generated[:, inputs["input_ids"].shape[1]:]
            texts = tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
            answers = [Answer(answer_text(text), done) for text, done in zip(texts, ended(new_tokens, stop_ids), strict=True)]
            n = config.samples_per_prompt
            answered.update((item, answers[k * n:(k + 1) * n]) for k, item in enumerate(batch))
    return [answered[i] for i in range(len(items))]


def stream(model, tokenizer, messages: list[dict[str, str]], adapter: bool, config: CompareConfig,
           seed: int | None = None) -> Iterator[str]:
    """The answer to one conversation, piece by piece as it is generated (transformers' TextIteratorStreamer).

    The model generates in a background thread; the adapter is switched inside that thread and
    back when it ends, so one model serves every contender in turn.
    """
    import torch
    from transformers import TextIteratorStreamer

    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    inputs = tokenizer([text], return_tensors="pt", add_special_tokens=False).to(model.device)
    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=600)
    failure: list[BaseException] = []

    def work():
        try:
            if seed is not None:
                torch.manual_seed(seed)
            with torch.inference_mode(), adapter_switch(model, adapter):
                model.generate(**inputs, **sampling_kwargs(config), streamer=streamer,
                               eos_token_id=end_of_turn_ids(tokenizer), pad_token_id=tokenizer.pad_token_id)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread below
            failure.append(exc)
            streamer.end()

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    for piece in streamer:
        if piece:
            yield piece
    thread.join()
    if failure:
        raise failure[0]


def perplexity_of(losses: list[float]) -> float:
    return math.exp(sum(losses) / len(losses)) if losses else float("nan")


def heldout_perplexity(model, tokenizer, heldout, adapter: bool, max_length: int = 512,
                       batch_size: int = 8) -> float:
    """Perplexity of the brand's own held-out answers (assistant tokens only)."""
    import torch

    rows = [tokenize_example(tokenizer, ex["messages"], max_length) for ex in heldout]
    rows = [r for r in rows if 1 in r["assistant_masks"]]
    total_loss, total_tokens = 0.0, 0
    for start in range(0, len(rows), batch_size):
        batch = rows[start:start + batch_size]
        ids, labels, attention = pad_batch(batch, tokenizer.pad_token_id)
        with torch.inference_mode(), adapter_switch(model, adapter):
            logits = model(input_ids=ids.to(model.device), attention_mask=attention.to(model.device)).logits.float()
        shift_logits, shift_labels = logits[:, :-1], labels[:, 1:].to(logits.device)
        loss = torch.nn.functional.cross_entropy(shift_logits.reshape(-1, shift_logits.shape[-1]),
                                                 shift_labels.reshape(-1), ignore_index=-100, reduction="sum")
        total_loss += loss.item()
        total_tokens += int((shift_labels != -100).sum())
    return perplexity_of([total_loss / total_tokens]) if total_tokens else float("nan")


@dataclass
class Generation:
    """One contender's answer to one request."""

    item_id: str
    kind: str
    source: str
    prompt: str
    reference: str
    model: str                       # the contender: generic | prompted | tuned
    sample: int
    text: str
    prompt_tokens: int = 0
    finished: bool = True            # ended on its own, not cut at max_new_tokens


def save_generations(generations: list[Generation], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        for g in generations:
            handle.write(json.dumps(asdict(g), ensure_ascii=False) + "\n")
    return path


def load_generations(path: str | Path) -> list[Generation]:
    with open(path, encoding="utf-8") as handle:
        return [Generation(**json.loads(line)) for line in handle if line.strip()]
