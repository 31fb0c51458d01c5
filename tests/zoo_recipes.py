"""Short runs of the chat recipes' essential calls on one zoo member, shared by the per-environment zoo tests.

Each runner follows its notebook's order (template, end-of-turn alignment, loss mask, model at the precision
policy's dtype, train a few steps, generate, save) and returns what the tests check: the masks of the
training rows, the stop rate before and after, and the saved folder.
"""

from __future__ import annotations

import datasets
import torch
from transformers import DataCollatorForSeq2Seq, GenerationConfig, Trainer, TrainingArguments

from cookbook.chat import masked_segments, prompt_messages, tokenize_conversation
from cookbook.loading import load_tokenizer
from cookbook.smoke.data import chat_examples, multi_turn_examples
from cookbook.training import generate_replies, stop_token_id

CONVERSATIONS = chat_examples(48, seed=5) + multi_turn_examples(16, seed=6)
PROMPTS = [prompt_messages(row["messages"]) for row in chat_examples(6, seed=7)]


def stop_rate(model, tokenizer, max_new_tokens: int = 12) -> float:
    replies = generate_replies(model, tokenizer, PROMPTS, max_new_tokens=max_new_tokens)
    return sum(reply["stopped_at_eos"] for reply in replies) / len(replies)


def tokenized_conversations(tokenizer, max_length: int = 192) -> datasets.Dataset:
    return datasets.Dataset.from_list(CONVERSATIONS).map(
        lambda row: tokenize_conversation(row["messages"], tokenizer, max_length), remove_columns=["messages"]
    )


def row_segments(dataset: datasets.Dataset, tokenizer, rows: int = 6) -> list[list[str]]:
    return [masked_segments(dataset[i], tokenizer) for i in range(rows)]


def train_briefly(model, tokenizer, dataset, output_dir, steps: int, learning_rate: float, **overrides) -> Trainer:
    args = TrainingArguments(
        output_dir=str(output_dir),
        max_steps=steps,
        per_device_train_batch_size=8,
        per_device_eval_batch_size=8,
        learning_rate=learning_rate,
        lr_scheduler_type="constant",
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        seed=0,
        **overrides,
    )
    collator = DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100)
    return Trainer(
        model=model, args=args, train_dataset=dataset, eval_dataset=dataset.select(range(8)), data_collator=collator
    )


def saved_stop(folder, tokenizer) -> tuple[str, int]:
    """(EOS of the saved tokenizer, first stop id of the saved generation config), to compare with the end of turn."""
    saved = GenerationConfig.from_pretrained(folder).eos_token_id
    return load_tokenizer(str(folder)).eos_token, saved[0] if isinstance(saved, list) else saved


def end_of_turn_id(tokenizer) -> int:
    return stop_token_id(tokenizer)


torch.set_num_threads(1)  # tiny matmuls: one thread is fastest, and much faster on a busy machine
