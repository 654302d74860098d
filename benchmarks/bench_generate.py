"""Generation benchmark: 32 prompts batched (left padding) against one by one, in the same process.

    python benchmarks/bench_generate.py [--model smollm2-135m] [--prompts 32] [--max-new-tokens 96] [--batch-size 16]
    python benchmarks/bench_generate.py --model brandkit-tiny      # the quick check

Uses SmolLM2-135M-Instruct (or the offline tiny model) with a LoRA adapter attached (as the compare
stage runs it) and the compare stage's own generate(). Both runs are greedy, so they should produce
the same text (the count of identical answers is printed); the ratio of their times is the
batching speed-up. Target: at least 5x on a CPU.
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
    args = parser.parse_args()

    import torch
    from peft import LoraConfig, get_peft_model

    from brandkit.chat import prepare_tokenizer
    from brandkit.compare import EvalItem, generate
    from brandkit.config import BrandKit, CompareConfig, TrainConfig
    from brandkit.models import load_base_model, load_tokenizer

    torch.manual_seed(0)
    tokenizer = load_tokenizer(args.model)
    prepare_tokenizer(tokenizer)
    model = get_peft_model(load_base_model(args.model, TrainConfig(dtype="float32"), tokenizer),
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

    start = time.perf_counter()
    batched = generate(model, tokenizer, items, config, adapter=True, batch_size=args.batch_size, progress=False)
    batched_time = time.perf_counter() - start
    start = time.perf_counter()
    single = generate(model, tokenizer, items, config, adapter=True, batch_size=1, progress=False)
    single_time = time.perf_counter() - start

    tokens = sum(len(tokenizer(t[0].text, add_special_tokens=False)["input_ids"]) for t in single)
    same = sum(a == b for a, b in zip(batched, single))
    print(f"{args.model}: {args.prompts} prompts, up to {args.max_new_tokens} new tokens each (greedy), {tokens} tokens generated")
    print(f"one by one: {single_time:.1f}s = {tokens / single_time:,.0f} tokens/s")
    print(f"batched ({args.batch_size} per batch, left padding): {batched_time:.1f}s = {tokens / batched_time:,.0f} tokens/s")
    print(f"speed-up: {single_time / batched_time:.1f}x (target >= 5x); identical outputs: {same}/{args.prompts}")


if __name__ == "__main__":
    main()
