"""Padding-free packing computes no pad token and gives the same loss as the padded batch."""

import itertools

import pytest
import torch
from transformers import AutoModelForCausalLM, LlamaConfig

from cookbook.packing import packing_collator, padded_collator
from cookbook.perf.packing_layouts import (
    best_fit_decreasing,
    binned_packing_collator,
    padding_share,
    register_segment_attention,
    variable_length_chats,
)
from cookbook.smoke.tiny_model import train_tiny_tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return train_tiny_tokenizer()


@pytest.fixture(scope="module")
def rows(tokenizer):
    return variable_length_chats(tokenizer, 6, median_tokens=40, max_tokens=120, seed=3)


def test_lengths_vary_and_padding_share_is_computed(rows):
    lengths = [len(row["input_ids"]) for row in rows]
    assert len(set(lengths)) > 3 and max(lengths) <= 120
    assert padding_share([10, 30], 2) == pytest.approx(1 - 40 / 60)
    assert padding_share([10, 30], 1) == 0


def test_packed_batch_has_no_padding_and_restarting_positions(rows, tokenizer):
    batch = packing_collator()(rows)
    total = sum(len(row["input_ids"]) for row in rows)
    assert batch["input_ids"].shape == (1, total)
    assert (batch["input_ids"] != tokenizer.pad_token_id).all()
    starts = (batch["position_ids"][0] == 0).nonzero().flatten().tolist()
    assert len(starts) == len(rows)
    assert (batch["labels"][0, starts] == -100).all()  # no prediction across examples


def tiny_model(tokenizer, attention="sdpa"):
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(config, attn_implementation=attention).eval()


def test_packed_loss_equals_padded_loss(rows, tokenizer):
    model = tiny_model(tokenizer)
    padded = padded_collator(tokenizer)(rows)
    assert (padded["attention_mask"] == 0).any()
    packed = packing_collator()(rows)
    with torch.no_grad():
        padded_loss = model(**padded).loss
        packed_loss = model(**packed, use_cache=False).loss
        # with a cache (the default use_cache=True), transformers 5 skips the packed-sequence mask and the
        # examples attend to each other: a different loss. Packing needs use_cache=False.
        leaked = model(**packed).loss
    assert packed_loss.item() == pytest.approx(padded_loss.item(), rel=1e-5)
    assert abs(leaked.item() - padded_loss.item()) > 1e-3


def test_best_fit_decreasing_fills_the_fullest_bin_that_fits():
    lengths = [5, 7, 3, 2, 4, 10]
    bins = best_fit_decreasing(lengths, 10)
    assert sorted(i for b in bins for i in b) == list(range(6))
    assert [[lengths[i] for i in b] for b in bins] == [[10], [7, 3], [5, 4], [2]]
    # best fit, not first fit: the 1 goes into 6+3 (room 1), not into 8 (room 2)
    assert [[[8, 6, 3, 1][i] for i in b] for b in best_fit_decreasing([8, 6, 3, 1], 10)] == [[8], [6, 3, 1]]
    assert best_fit_decreasing([12, 3], 10) == [[0], [1]]  # an over-long example gets its own bin


def test_binned_rows_have_no_padding_inside_and_restart_positions(rows, tokenizer):
    lengths = [len(row["input_ids"]) for row in rows]
    batch = binned_packing_collator(tokenizer.pad_token_id)(rows)
    n_rows, width = batch["input_ids"].shape
    assert width == max(lengths) and 1 < n_rows < len(rows)  # fewer rows than examples, none wider than the longest
    assert "attention_mask" not in batch  # transformers derives the packed mask from position_ids
    segments = []
    for ids, positions, labels in zip(batch["input_ids"], batch["position_ids"], batch["labels"], strict=True):
        is_pad = ids == tokenizer.pad_token_id
        used = int((~is_pad).sum())
        assert not is_pad[:used].any() and is_pad[used:].all()  # pads only at the tail of a row
        starts = (positions[:used] == 0).nonzero().flatten().tolist()
        segments += [end - start for start, end in itertools.pairwise([*starts, used])]
        assert (labels[starts] == -100).all() and (labels[used:] == -100).all()
        if used < width:
            assert positions[used] == 0  # the pad tail is a segment of its own
    assert sorted(segments) == sorted(lengths)  # every example exactly once, unsplit
    wider = binned_packing_collator(tokenizer.pad_token_id, max_tokens=sum(lengths))(rows)
    assert wider["input_ids"].shape == (1, sum(lengths))


@pytest.mark.parametrize("max_tokens", [None, 200])
def test_binned_loss_equals_padded_loss(rows, tokenizer, max_tokens):
    model = tiny_model(tokenizer)
    binned = binned_packing_collator(tokenizer.pad_token_id, max_tokens)(rows)
    assert binned["input_ids"].shape[0] > 1  # several packed rows: the batch > 1 packed-mask path
    with torch.no_grad():
        padded_loss = model(**padded_collator(tokenizer)(rows)).loss
        binned_loss = model(**binned, use_cache=False).loss
        leaked = model(**binned).loss  # with a cache: no packed-sequence mask
    assert binned_loss.item() == pytest.approx(padded_loss.item(), rel=1e-5)
    assert abs(leaked.item() - padded_loss.item()) > 1e-3


def test_segment_attention_equals_padded_loss_and_gradients(rows, tokenizer):
    padded_model = tiny_model(tokenizer)
    segment_model = tiny_model(tokenizer, register_segment_attention())
    padded_model.train()
    segment_model.train()
    padded_loss = padded_model(**padded_collator(tokenizer)(rows)).loss
    packed = packing_collator()(rows)
    segment_loss = segment_model(**packed, use_cache=False).loss
    assert segment_loss.item() == pytest.approx(padded_loss.item(), rel=1e-5)
    padded_loss.backward()
    segment_loss.backward()
    for (name, a), (_, b) in zip(padded_model.named_parameters(), segment_model.named_parameters(), strict=True):
        assert torch.allclose(a.grad, b.grad, atol=1e-6), name
    with torch.no_grad():
        # the same model on a padded batch falls back to masked SDPA: same loss again
        assert segment_model(**padded_collator(tokenizer)(rows)).loss.item() == pytest.approx(
            padded_loss.item(), rel=1e-5
        )
