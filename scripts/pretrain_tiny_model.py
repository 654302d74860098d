"""Pretrain brandkit's offline tiny base model on the generic pool, on a CPU, deterministically.

    python scripts/pretrain_tiny_model.py [--steps 400] [--out brandkit/assets/tiny-model]

The model is a small Llama (about 4M parameters) with its own byte-level BPE tokenizer and a ChatML
chat template. It sees only data/samples/generic/generic.jsonl (neutral business texts), shaped as
the same chat requests brandkit builds for fine-tuning (brandkit.examples), so that, untuned, it
answers a request with generic business prose and has never seen any sample brand's writing.

Same machine, same thread count, same seed: the same weights (torch deterministic algorithms).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from brandkit.config import TINY_MODEL_DIR, generic_pool_path  # noqa: E402
from brandkit.examples import to_messages  # noqa: E402
from brandkit.chat import CHATML_TEMPLATE  # noqa: E402

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|pad|>"]
SYSTEM_PROMPTS = ["", "", "You are a helpful writing assistant for a small business.",
                  "You write clear, polite texts for a small business and its customers.",
                  "Write for our business in a professional tone."]
ARCHITECTURE = dict(hidden_size=256, intermediate_size=688, num_hidden_layers=4, num_attention_heads=4,
                    num_key_value_heads=2, max_position_embeddings=1024, rms_norm_eps=1e-5, rope_theta=10000.0,
                    tie_word_embeddings=True)
VOCAB_SIZE = 4096
SEQ_LEN = 384


def load_pool() -> list[dict]:
    rows = [json.loads(line) for line in generic_pool_path().read_text(encoding="utf-8").splitlines() if line]
    for row in rows:
        row.setdefault("tags", [])
        if row["kind"] == "chat":  # a single agent reply; its title is the customer's question
            row["turns"] = [{"role": "customer", "text": row["title"]}, {"role": "staff", "text": row["text"]}]
    return rows


def conversations(pool: list[dict], rng: random.Random) -> list[list[dict]]:
    out = []
    for row in pool:
        system = rng.choice(SYSTEM_PROMPTS)
        messages = to_messages(row, system)
        if messages:
            out.append(messages)
    return out


def build_tokenizer(texts: list[str]):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE, special_tokens=SPECIAL_TOKENS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), min_frequency=2)
    core.train_from_iterator(texts, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, bos_token=None, unk_token=None,
                                        eos_token="<|im_end|>", pad_token="<|pad|>",
                                        additional_special_tokens=["<|endoftext|>", "<|im_start|>"])
    tokenizer.chat_template = CHATML_TEMPLATE
    tokenizer.model_max_length = ARCHITECTURE["max_position_embeddings"]
    return tokenizer


def batches(sequences: list[list[int]], batch_size: int, rng: random.Random) -> list[list[list[int]]]:
    """Length-grouped batches (little padding), in a shuffled order."""
    order = sorted(range(len(sequences)), key=lambda i: (len(sequences[i]), rng.random()))
    groups = [[sequences[i] for i in order[start:start + batch_size]] for start in range(0, len(order), batch_size)]
    rng.shuffle(groups)
    return groups


def collate(group: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    width = max(len(s) for s in group)
    ids = torch.full((len(group), width), pad_id)
    labels = torch.full((len(group), width), -100)
    attention = torch.zeros((len(group), width), dtype=torch.long)
    for row, seq in enumerate(group):
        ids[row, :len(seq)] = torch.tensor(seq)
        labels[row, :len(seq)] = torch.tensor(seq)
        attention[row, :len(seq)] = 1
    return ids, labels, attention


@torch.no_grad()
def validation_loss(model, sequences: list[list[int]], pad_id: int) -> float:
    model.eval()
    total, count = 0.0, 0
    for start in range(0, len(sequences), 16):
        ids, labels, attention = collate(sequences[start:start + 16], pad_id)
        n = int((labels[:, 1:] != -100).sum())
        total += model(input_ids=ids, attention_mask=attention, labels=labels).loss.item() * n
        count += n
    model.train()
    return total / max(count, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--eval-share", type=float, default=0.05)
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--out", type=Path, default=TINY_MODEL_DIR)
    args = parser.parse_args()

    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    rng = random.Random(args.seed)
    started = time.time()

    pool = load_pool()
    convs = conversations(pool, rng)
    texts = [tokenizer_text for conv in convs for tokenizer_text in (m["content"] for m in conv)]
    tokenizer = build_tokenizer(texts)
    encoded = [tokenizer(tokenizer.apply_chat_template(c, tokenize=False), add_special_tokens=False)["input_ids"]
               [:SEQ_LEN] for c in convs]
    # A held-out slice of the pool tells when the model stops generalising and starts memorising.
    held = set(rng.sample(range(len(encoded)), max(1, int(len(encoded) * args.eval_share))))
    sequences = [s for i, s in enumerate(encoded) if i not in held]
    validation = [s for i, s in enumerate(encoded) if i in held]
    tokens = sum(len(s) for s in sequences)
    print(f"{len(pool)} generic documents -> {len(sequences)} conversations, {tokens} tokens, "
          f"vocabulary {len(tokenizer)}")

    config = LlamaConfig(vocab_size=len(tokenizer), bos_token_id=None,
                         eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
                         pad_token_id=tokenizer.pad_token_id, attention_dropout=args.dropout, **ARCHITECTURE)
    model = LlamaForCausalLM(config)
    params = sum(p.numel() for p in model.parameters())
    print(f"model: {params / 1e6:.2f}M parameters")
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.1, betas=(0.9, 0.95))
    warmup = max(1, args.steps // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (
        1 + math.cos(math.pi * min(1.0, s / args.steps))) * 0.9 + 0.1 * min(1.0, (s + 1) / warmup))
    model.train()
    step, log = 0, []
    while step < args.steps:
        for group in batches(sequences, args.batch_size, rng):
            ids, labels, attention = collate(group, tokenizer.pad_token_id)
            loss = model(input_ids=ids, attention_mask=attention, labels=labels).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            if step % 50 == 0 or step == 1:
                val = validation_loss(model, validation, tokenizer.pad_token_id)
                log.append({"step": step, "loss": round(loss.item(), 4), "val_loss": round(val, 4),
                            "seconds": round(time.time() - started)})
                print(f"step {step}/{args.steps} loss {loss.item():.3f} validation {val:.3f} "
                      f"({time.time() - started:.0f}s)", flush=True)
            if step >= args.steps:
                break

    model.eval()
    model.config.attention_dropout = 0.0  # a pretraining regulariser only: fine-tuning brings its own (LoRA dropout)
    args.out.mkdir(parents=True, exist_ok=True)
    model.to(torch.float16).save_pretrained(str(args.out))
    tokenizer.save_pretrained(str(args.out))
    GenerationConfig(eos_token_id=config.eos_token_id, pad_token_id=config.pad_token_id, do_sample=True,
                     temperature=0.7, top_p=0.9, max_new_tokens=160).save_pretrained(str(args.out))
    minutes = (time.time() - started) / 60
    (args.out / "training_log.json").write_text(json.dumps(
        {"steps": args.steps, "batch_size": args.batch_size, "lr": args.lr, "seed": args.seed,
         "threads": args.threads, "documents": len(pool), "tokens": tokens, "parameters": params,
         "minutes": round(minutes, 1), "log": log}, indent=1), encoding="utf-8")
    (args.out / "README.md").write_text(MODEL_CARD.format(
        params=params / 1e6, docs=len(pool), tokens=tokens, steps=args.steps, minutes=minutes,
        loss=log[-1]["loss"] if log else float("nan"), vocab=len(tokenizer), seq=SEQ_LEN, **ARCHITECTURE),
        encoding="utf-8")
    print(f"saved to {args.out} in {minutes:.1f} minutes")


MODEL_CARD = """---
license: apache-2.0
language: [en]
library_name: transformers
pipeline_tag: text-generation
tags: [brandkit, tiny, offline, llama, rehearsal]
---

# brandkit-tiny

An offline tiny base model for rehearsing the brandkit pipeline without a network or a GPU.
**Its output is a rehearsal of the pipeline, not a quality result.**

- Architecture: Llama, {params:.2f}M parameters ({num_hidden_layers} layers, hidden size {hidden_size},
  {num_attention_heads} attention heads, {num_key_value_heads} key/value heads, tied embeddings), stored in float16.
- Tokenizer: byte-level BPE, {vocab} tokens, trained on the same data; ChatML chat template;
  `<|im_end|>` ends a turn (EOS) and `<|pad|>` pads (distinct from EOS).
- Data: only `data/samples/generic/generic.jsonl`, {docs} neutral business texts written for brandkit
  (notices, product blurbs, customer replies, guides) in no particular brand's voice, shaped as the chat
  requests brandkit builds (`brandkit.examples`); {tokens} tokens per epoch, sequences up to {seq} tokens.
  It has never seen the sample brands' writing.
- Training: {steps} steps of AdamW from scratch on a CPU in {minutes:.0f} minutes, final training loss {loss:.2f};
  deterministic for a given seed and thread count. Rebuild with `python scripts/pretrain_tiny_model.py`.

Untuned, it answers a request with generic, English-like business prose (often stitched from the
pool). Fine-tuned on a brand, it picks up that brand's vocabulary and habits, which is what the
compare stage measures.
"""


if __name__ == "__main__":
    main()
