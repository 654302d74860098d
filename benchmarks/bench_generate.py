"""Generation benchmark: 32 prompts batched (left padding) against one by one, in the same process;
then long prompts that share their start (the prompted contender's), read once against every time.

    python benchmarks/bench_generate.py [--model smollm2-135m] [--prompts 32] [--max-new-tokens 96] [--batch-size 16]
    python benchmarks/bench_generate.py --model brandkit-tiny      # the quick check

Uses SmolLM2-135M-Instruct (or the offline tiny model) with a LoRA adapter attached (as the compare
stage runs it) and the compare stage's own generate(), in the precision compare uses here (bf16 on
a CPU with fast bf16). Both runs are greedy, so they should produce the same text (the count of
identical answers is printed); the ratio of their times is the batching speed-up. Target: at least
5x on a CPU. The second part builds prompts as the prompted contender does (the brand guide, three
of the brand's texts of the request's kind, the request) (with the compare stage's PromptBuilder)
and times generate() with every prompt read whole against each shared start read once and kept
once for the rows that share it (brandkit's shared-prefix cache and attention). The third part times one batch
of 32 sampled answers (compare's temperature, top-p and repetition penalty, every answer held to the
same length) with transformers' own sampling against brandkit's CandidateSampler. Outside fp32, both
comparisons of text are repeated in fp32 (on --check-prompts prompts), where rounding cannot flip
a greedy choice: that is the check that batching and the shared start change nothing. The last part,
in fp32 (where compare uses it), times the long prompts again, each read whole, with brandkit's growing cache (each
step's keys and values written into room kept for the answer) against transformers' DynamicCache
(which copies the whole cache at every step), and checks that the text is the same.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m", help="smollm2-135m (default) or brandkit-tiny (quick)")
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--dtype", default=None, help="float32 or bfloat16 (default: what the compare stage uses here)")
    parser.add_argument("--check-prompts", type=int, default=8,
                        help="outside fp32: prompts whose batched and one-by-one answers are compared again in fp32")
    args = parser.parse_args()

    import torch
    from peft import LoraConfig, get_peft_model

    from brandkit.chat import prepare_tokenizer
    from brandkit.compare import EvalItem, PromptBuilder, context_budget, generate
    from brandkit.config import BrandKit, CompareConfig, TrainConfig
    from brandkit.models import inference_dtype, load_base_model, load_tokenizer

    torch.manual_seed(0)
    tokenizer = load_tokenizer(args.model)
    prepare_tokenizer(tokenizer)
    dtype = args.dtype or inference_dtype()  # as the compare stage generates: bf16 where it is fast here
    model = get_peft_model(load_base_model(args.model, TrainConfig(dtype=dtype), tokenizer),
                           LoraConfig(r=16, lora_alpha=32, task_type="CAUSAL_LM",
                                      target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]))
    model.eval()
    prompts = []
    for slug in ("ember-coffee", "ledgerline", "spoke-sprocket"):
        prompts += [p.prompt for p in BrandKit.load(slug).eval_prompts]
    items = [EvalItem(f"p{i}", "email", "bench", [{"role": "user", "content": prompts[i % len(prompts)]}])
             for i in range(args.prompts)]
    config = CompareConfig(max_new_tokens=args.max_new_tokens, do_sample=False, repetition_penalty=1.0)
    generate(model, tokenizer, items[:2], config, adapter=True, batch_size=2, progress=False)  # warm up

    batched_time, single_time, tokens, same = batching(model, tokenizer, items, config, args.batch_size)
    print(f"{args.model} in {dtype}: {args.prompts} prompts, up to {args.max_new_tokens} new tokens each (greedy), {tokens} tokens generated")
    print(f"one by one: {single_time:.1f}s = {tokens / single_time:,.0f} tokens/s")
    print(f"batched ({args.batch_size} per batch, left padding): {batched_time:.1f}s = {tokens / batched_time:,.0f} tokens/s")
    print(f"speed-up: {single_time / batched_time:.1f}x (target >= 5x); identical outputs: {same}/{args.prompts}")

    # the prompted contender's prompts, built by its own PromptBuilder: per kind, the guide and up to three
    # of the brand's texts (the brand kit's reference answers stand in for its training texts), then the request
    brand = BrandKit.load("ember-coffee")
    texts = [{"id": f"kit{n}", "kind": p.kind, "messages": [{"role": "user", "content": p.prompt},
                                                            {"role": "assistant", "content": p.reference}]}
             for n, p in enumerate(brand.eval_prompts)]
    short = CompareConfig(max_new_tokens=min(args.max_new_tokens, 32), do_sample=False, repetition_penalty=1.0)
    builder = PromptBuilder(brand, tokenizer, "", texts, context_budget(model, tokenizer, short.max_new_tokens))
    requests = [EvalItem(t["id"], t["kind"], "bench", t["messages"][:1]) for t in texts]
    long_items = builder.items_for("prompted", requests)
    by_kind = {item.kind for item in long_items}
    lengths = [len(tokenizer(tokenizer.apply_chat_template(i.messages, tokenize=False, add_generation_prompt=True),
                             add_special_tokens=False)["input_ids"]) for i in long_items]
    every_time_s, once_s, same = shared_start(model, tokenizer, long_items, short, args.batch_size)
    print(f"{len(long_items)} prompts of {min(lengths)}-{max(lengths)} tokens in {len(by_kind)} kinds sharing their start, "
          f"{short.max_new_tokens} new tokens each")
    print(f"whole prompt read for each: {every_time_s:.1f}s; shared start read and kept once per kind: {once_s:.1f}s; "
          f"speed-up {every_time_s / once_s:.2f}x; identical outputs: {same}/{len(long_items)}")

    sampled = CompareConfig(max_new_tokens=args.max_new_tokens)
    theirs_s, ours_s, rows = sampling(model, tokenizer, items[:32], sampled)
    print(f"{rows} rows sampled in one batch, {sampled.max_new_tokens} new tokens each: transformers' sampling "
          f"{theirs_s:.1f}s, brandkit's CandidateSampler {ours_s:.1f}s, speed-up {theirs_s / ours_s:.2f}x")

    if dtype != "float32":
        # bf16's rounding depends on the batch's shape (padding, rows), so a greedy choice between two
        # near-equal tokens can flip: whether batching itself is exact is checked where rounding is fine
        model.to(torch.float32)
        some = items[:args.check_prompts]
        *_, same = batching(model, tokenizer, some, config, args.batch_size)
        *_, same_start = shared_start(model, tokenizer, long_items, short, args.batch_size)
        print(f"the same runs in float32 (the exactness check): batched and one by one identical {same}/{len(some)}; "
              f"shared start read once and every time identical {same_start}/{len(long_items)}")

    model.to(torch.float32)
    longer = CompareConfig(max_new_tokens=args.max_new_tokens, do_sample=False, repetition_penalty=1.0)
    copying_s, growing_s, same = growing(model, tokenizer, long_items, longer, args.batch_size)
    print(f"in float32, the {len(long_items)} long prompts with {longer.max_new_tokens} new tokens each: transformers' "
          f"DynamicCache {copying_s:.1f}s, brandkit's growing cache {growing_s:.1f}s, speed-up "
          f"{copying_s / growing_s:.2f}x; identical outputs: {same}/{len(long_items)}")


def timed(call):
    """(seconds, result) of one call."""
    start = time.perf_counter()
    result = call()
    return time.perf_counter() - start, result


def batching(model, tokenizer, items, config, batch_size: int) -> tuple[float, float, int, int]:
    """Seconds batched and one by one, tokens generated, and how many answers came out the same."""
    from brandkit.compare import generate

    def run(size):
        return generate(model, tokenizer, items, config, adapter=True, batch_size=size, progress=False)

    batched_time, batched = timed(lambda: run(batch_size))
    single_time, single = timed(lambda: run(1))
    tokens = sum(len(tokenizer(t[0].text, add_special_tokens=False)["input_ids"]) for t in single)
    return batched_time, single_time, tokens, sum(a == b for a, b in zip(batched, single))


def sampling(model, tokenizer, items, config) -> tuple[float, float, int]:
    """Seconds for one batch sampled by transformers' warpers and multinomial, and by CandidateSampler
    (the same distribution); both held to exactly max_new_tokens, so they do the same work otherwise."""
    import torch

    from brandkit.compare.generate import sampling_kwargs

    tokenizer.padding_side = "left"
    texts = [tokenizer.apply_chat_template(i.messages, tokenize=False, add_generation_prompt=True) for i in items]
    inputs = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    same = {"max_new_tokens": config.max_new_tokens, "min_new_tokens": config.max_new_tokens,
            "pad_token_id": tokenizer.pad_token_id}
    theirs = {"do_sample": True, "temperature": config.temperature, "top_k": config.top_k, "top_p": config.top_p,
              "repetition_penalty": config.repetition_penalty}
    ours = {key: value for key, value in sampling_kwargs(config).items() if key != "max_new_tokens"}

    def run(kwargs):
        torch.manual_seed(config.seed)
        with torch.inference_mode():
            return model.generate(**inputs, **same, **kwargs)

    theirs_s, _ = timed(lambda: run(theirs))
    ours_s, _ = timed(lambda: run(ours))
    return theirs_s, ours_s, len(items)


def shared_start(model, tokenizer, items, config, batch_size: int) -> tuple[float, float, int]:
    """Seconds with every prompt read whole and with each shared start read once, and how many answers agree."""
    from brandkit.compare import generate

    def run(share):
        return generate(model, tokenizer, items, config, adapter=True, batch_size=batch_size, progress=False,
                        share_prefixes=share)

    every_time_s, every_time = timed(lambda: run(False))
    once_s, once = timed(lambda: run(True))
    return every_time_s, once_s, sum(a == b for a, b in zip(once, every_time))


def growing(model, tokenizer, items, config, batch_size: int) -> tuple[float, float, int]:
    """Seconds with transformers' DynamicCache in place of brandkit's growing cache and with it (what
    compare uses in fp32), the better of two runs each, alternating (the first run in a process also
    pays for fresh memory: 70 s against 44 s measured for the same DynamicCache run); and how many
    answers agree."""
    from unittest import mock

    from brandkit import models
    from brandkit.compare import generate

    def run():  # each prompt read whole: its own long cache, where the copies cost most
        return generate(model, tokenizer, items, config, adapter=True, batch_size=batch_size, progress=False,
                        share_prefixes=False)

    def copying(room):
        return None  # generate's own DynamicCache

    copying_s, growing_s = [], []
    for _ in range(2):
        with mock.patch.object(models, "growing_cache", copying):
            seconds, copied = timed(run)
        copying_s.append(seconds)
        seconds, grown = timed(run)
        growing_s.append(seconds)
    return min(copying_s), min(growing_s), sum(a == b for a, b in zip(grown, copied))


if __name__ == "__main__":
    main()
