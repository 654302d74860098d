"""The CPU (and any non-Unsloth) backend: transformers + PEFT + TRL, with brandkit's batching and loss.

Same inputs and outputs as the Unsloth backend: chat examples in, a trainer around a PEFT model out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .chat import PAD_TOKEN, prepare_tokenizer, tokenize_examples
from .config import BrandkitError, TrainConfig
from .presets import sft_config
from .models import load_base_model, load_tokenizer


def lora_config(config: TrainConfig, model, trainable_tokens: list[int] | None = None):
    from peft import LoraConfig

    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    targets = [t for t in config.target_modules if t in names]
    if not targets:
        raise BrandkitError(f"none of the LoRA target modules {config.target_modules} exist in this model")
    extra = {"trainable_token_indices": {"embed_tokens": trainable_tokens}} if trainable_tokens else {}
    return LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules=targets, bias="none", task_type="CAUSAL_LM", **extra)


def build_peft_trainer(examples, config: TrainConfig, out: Path, callbacks: list):
    import torch
    from peft import get_peft_model
    from transformers import set_seed

    from .fused_lora import fuse_lora_layers

    set_seed(config.seed)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    tokenizer = load_tokenizer(config.base_model)
    added = prepare_tokenizer(tokenizer)
    model = load_base_model(config.base_model, config, tokenizer)
    new_ids = [tokenizer.convert_tokens_to_ids(t) for t in added if t != PAD_TOKEN]
    model = get_peft_model(model, lora_config(config, model, new_ids or None))
    fuse_lora_layers(model)  # the plain fp32 case, 1.13x a step on SmolLM2 (2 cores); PEFT's forward otherwise
    train_ds = tokenize_examples(examples["train"], tokenizer, config.max_seq_length)
    eval_ds = (tokenize_examples(examples["validation"], tokenizer, config.max_seq_length)
               if len(examples.get("validation", [])) else None)
    args = sft_config(config, out / "checkpoints", has_eval=eval_ds is not None)
    trainer = trainer_class()(model=model, args=args, train_dataset=train_ds, eval_dataset=eval_ds,
                              processing_class=tokenizer, callbacks=callbacks)
    return trainer, model, tokenizer


class LengthBatches:
    """A sampler: examples sorted by length into batches of near-equal length, batch order shuffled per epoch.

    transformers' LengthGroupedSampler sorts only within small "megabatches", so on a small data set
    batches still mix short and long examples, and the padding is computed for nothing. Real
    documents vary a lot in length (a 20-word reply, a 600-word post): sorting the whole set leaves
    almost no padding, and shuffling whole batches keeps the order random.
    """

    def __init__(self, lengths: list[int], batch_size: int, seed: int):
        self.lengths, self.batch_size, self.seed, self.epoch = lengths, batch_size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self):
        import random

        rng = random.Random(self.seed + self.epoch)
        order = sorted(range(len(self.lengths)), key=lambda i: (self.lengths[i], rng.random()))
        batches = [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        # the short last batch stays last: the data loader cuts this order into batches by count, so
        # one short batch in the middle would shift every later batch across two length groups
        short = batches.pop() if batches and len(batches[-1]) < self.batch_size else None
        rng.shuffle(batches)
        return iter([i for batch in batches + ([short] if short else []) for i in batch])


def answer_only_loss(model, inputs: dict[str, Any], num_items_in_batch=None):
    """Next-token loss with the output layer applied only where there is a label (the answers).

    The prompt and the padding need hidden states (the answer attends to them) but no logits; on
    a small model the vocabulary projection is a quarter of the work. A frozen plain head takes its
    loss a slice of rows at a time (head_loss), never holding the logits whole. None when this
    model's head does anything beyond a plain projection, or a trained head's logits would not fit
    comfortably.
    """
    import torch

    from . import head_loss

    if hasattr(model, "module"):  # wrapped for DDP/FSDP: its own forward must run (gradient sync)
        return None
    causal_lm = model.get_base_model() if hasattr(model, "get_base_model") else model
    config, head = causal_lm.config, causal_lm.get_output_embeddings()
    if (getattr(config, "final_logit_softcapping", None) or getattr(config, "logit_scale", 1.0) not in (None, 1.0)
            or head is None or getattr(head, "bias", None) is not None or not hasattr(causal_lm, "get_decoder")):
        return None
    labels = inputs["labels"][:, 1:]
    valid = labels != -100
    # a head that trains too (new tokens' rows) or is wrapped gets its logits whole, where they fit
    sliced = type(head) is torch.nn.Linear and not head.weight.requires_grad
    if not sliced and int(valid.sum()) * head.weight.shape[0] > 64_000_000:
        return None
    # position_ids: padding-free (packed) batches restart them at each example, which is what keeps the
    # examples in one row from attending to each other (transformers builds the block mask from them)
    hidden = causal_lm.get_decoder()(input_ids=inputs["input_ids"], attention_mask=causal_mask_needed(inputs),
                                     position_ids=inputs.get("position_ids"),
                                     use_cache=False).last_hidden_state[:, :-1]
    if sliced:
        loss = head_loss.head_cross_entropy_sum(hidden[valid], head, labels[valid])
    else:
        loss = torch.nn.functional.cross_entropy(head(hidden[valid]).float(), labels[valid], reduction="sum")
    count = num_items_in_batch if num_items_in_batch is not None else valid.sum()
    return loss / (count.to(loss.device) if isinstance(count, torch.Tensor) else count)


def causal_mask_needed(inputs: dict[str, Any]):
    """The batch's attention mask, or None when the causal mask alone gives the same answer.

    With padding only at the end of each row, a real token never looks at a pad (they all come
    after it), so the padding mask changes nothing for the tokens the loss sees. Without it, SDPA
    runs its causal path, and no mask is built or read for every layer.
    """
    mask = inputs.get("attention_mask")
    if mask is None or inputs.get("position_ids") is not None or mask.dim() != 2:
        return mask
    right_padded = bool((mask[:, 1:] <= mask[:, :-1]).all()) and bool(mask[:, 0].all())
    return None if right_padded else mask


def trainer_class():
    """TRL's SFTTrainer with two changes for speed; the loss, the masking and the rest are TRL's.

    - No per-step entropy and accuracy metrics: they take a softmax over the whole vocabulary for
      every token, on top of the loss (the plain transformers loss over the labels TRL built).
    - Batches of near-equal length (LengthBatches) when length grouping is asked for.
    """
    from transformers import Trainer
    from trl import SFTTrainer

    class BrandkitSFTTrainer(SFTTrainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            inputs["use_cache"] = False
            # validation asks for the outputs too, but reads only the loss when no metric needs logits
            # (TRL's prediction_step says so with this key): then the head runs on the answers only there too
            loss_only = inputs.pop("_prediction_loss_only", None) is True and self.compute_metrics is None \
                and self.preprocess_logits_for_metrics is None
            if not return_outputs or loss_only:
                # accelerate's mixed precision wraps the model's forward, which answer_only_loss goes
                # around (it calls the decoder and the head itself): its autocast is entered here instead
                with self.accelerator.autocast():
                    loss = answer_only_loss(model, inputs, num_items_in_batch)
                if loss is not None:
                    return (loss, {}) if return_outputs else loss
            return Trainer.compute_loss(self, model, inputs, return_outputs=return_outputs,
                                        num_items_in_batch=num_items_in_batch)

        def _get_train_sampler(self, train_dataset=None):
            dataset = train_dataset if train_dataset is not None else self.train_dataset
            if self.args.train_sampling_strategy != "group_by_length" or dataset is None:
                return super()._get_train_sampler(train_dataset)
            lengths = [len(ids) for ids in dataset["input_ids"]]
            return LengthBatches(lengths, self.args.train_batch_size * self.args.gradient_accumulation_steps,
                                 self.args.data_seed or self.args.seed)

    return BrandkitSFTTrainer
