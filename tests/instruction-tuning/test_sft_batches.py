"""Unit tests for looking inside TRL's SFT batches (cookbook.sft_batches): padding counts, splitting packed rows,
the assistant-only loss mask TRL builds, and that padding-free packing keeps conversations apart."""

import datasets
import pytest
import torch
from trl import SFTConfig, SFTTrainer
from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

from cookbook.chat import IGNORE_INDEX
from cookbook.loading import load_causal_lm, load_tokenizer
from cookbook.sft_batches import CountingCollator, batch_token_counts, loss_tokens, split_sequences
from cookbook.smoke.tiny_model import save_tiny_model

EXAMPLES = [
    {"input_ids": [5, 6, 7, 8], "labels": [IGNORE_INDEX, IGNORE_INDEX, 7, 8]},
    {"input_ids": [9, 10], "labels": [IGNORE_INDEX, 10]},
]


@pytest.fixture(scope="module")
def tiny_path():
    return str(save_tiny_model())


def test_padded_batch_counts_padding_and_splits_back():
    batch = DataCollatorForLanguageModeling(pad_token_id=0)(EXAMPLES)
    assert batch_token_counts(batch) == {"positions": 8, "tokens": 6, "padding": 2, "loss_tokens": 3}
    assert split_sequences(batch) == EXAMPLES


def test_padding_free_batch_has_no_padding_and_splits_at_position_resets():
    batch = DataCollatorForLanguageModeling(pad_token_id=0, padding_free=True)(EXAMPLES)
    assert batch["input_ids"].shape == (1, 6) and "attention_mask" not in batch
    assert batch_token_counts(batch) == {"positions": 6, "tokens": 6, "padding": 0, "loss_tokens": 3}
    assert [s["input_ids"] for s in split_sequences(batch)] == [e["input_ids"] for e in EXAMPLES]
    with pytest.raises(ValueError, match="position_ids"):
        split_sequences({"input_ids": batch["input_ids"], "labels": batch["labels"]})


def test_counting_collator_adds_up_every_batch():
    counter = CountingCollator(DataCollatorForLanguageModeling(pad_token_id=0))
    counter(EXAMPLES)
    counter(EXAMPLES[:1])
    summary = counter.summary(seconds=2.0)
    assert (summary["batches"], summary["tokens"], summary["padding"]) == (2, 10, 2)
    assert summary["padding_share"] == pytest.approx(2 / 12)
    assert summary["tokens_per_s"] == pytest.approx(5.0)
    assert counter.summary(seconds=1.0, batches=1)["tokens"] == 6  # only the batches trained on


@pytest.mark.parametrize("packing", [False, True])
def test_trl_assistant_only_loss_marks_exactly_the_reply_and_its_end_of_turn(tiny_path, tmp_path, packing):
    tokenizer = load_tokenizer(tiny_path)
    conversations = [
        [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "What is the opposite of hot?"},
            {"role": "assistant", "content": "cold"},
        ],
        [{"role": "user", "content": "What color is snow?"}, {"role": "assistant", "content": "white"}],
    ]
    trainer = SFTTrainer(
        model=load_causal_lm(tiny_path),
        args=SFTConfig(
            output_dir=str(tmp_path),
            max_length=64,
            packing=packing,
            assistant_only_loss=True,
            bf16=False,
            report_to="none",
            gradient_checkpointing=False,
        ),
        train_dataset=datasets.Dataset.from_list([{"messages": m} for m in conversations]),
        processing_class=tokenizer,
    )
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(len(trainer.train_dataset))])
    replies = sorted("".join(loss_tokens(sequence, tokenizer)) for sequence in split_sequences(batch))
    assert replies == ["cold<|im_end|>", "white<|im_end|>"]


def test_padding_free_logits_match_padded_ones_without_a_cache(tiny_path):
    """Packed conversations must not attend to each other: with position_ids and no attention mask, transformers
    builds a block-diagonal mask (TRL passes use_cache=False, which that detection needs)."""
    tokenizer = load_tokenizer(tiny_path)
    model = load_causal_lm(tiny_path).eval()
    examples = [{"input_ids": tokenizer(text)["input_ids"]} for text in ("The quick fox runs.", "The owl sleeps.")]
    padded = DataCollatorForLanguageModeling(pad_token_id=tokenizer.pad_token_id)(examples)
    free = DataCollatorForLanguageModeling(pad_token_id=tokenizer.pad_token_id, padding_free=True)(examples)
    with torch.no_grad():
        reference = model(input_ids=padded["input_ids"], attention_mask=padded["attention_mask"]).logits
        packed = model(input_ids=free["input_ids"], position_ids=free["position_ids"], use_cache=False).logits
    first = len(examples[0]["input_ids"])
    second = len(examples[1]["input_ids"])
    torch.testing.assert_close(packed[0, :first], reference[0, :first], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(packed[0, first:], reference[1, :second], atol=1e-4, rtol=1e-4)
