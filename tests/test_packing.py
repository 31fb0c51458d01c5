"""Padding-free packing computes no pad token and gives the same loss as the padded batch."""

import pytest
import torch
from transformers import AutoModelForCausalLM, LlamaConfig

from cookbook.packing import packing_collator, padded_collator, padding_share, variable_length_chats
from cookbook.tiny_model import train_tiny_tokenizer


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


def test_packed_loss_equals_padded_loss(rows, tokenizer):
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
    model = AutoModelForCausalLM.from_config(config, attn_implementation="sdpa").eval()
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
