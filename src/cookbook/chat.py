"""Conversations in, token ids and a loss mask out: the step where chat fine-tuning most often goes wrong.

Loss belongs on the assistant's tokens only (including the end-of-turn token, so the model learns
to stop); the user's and system's tokens are context. The mask is derived from the tokenizer's own
chat template by rendering each prefix of the conversation, so it works for any template, also
ones without `{% generation %}` markers.
"""

from __future__ import annotations

from collections.abc import Sequence

from transformers import PreTrainedTokenizerBase

from cookbook.errors import CookbookInputError

ROLES = ("system", "user", "assistant")
IGNORE_INDEX = -100  # label value the cross-entropy loss skips


def validate_conversation(messages: object) -> list[dict]:
    """Check one conversation is a list of {"role", "content"} turns with known roles and an assistant turn."""
    expected = 'a list of {"role": "system"|"user"|"assistant", "content": str} messages'
    if not isinstance(messages, Sequence) or isinstance(messages, str) or not messages:
        raise CookbookInputError(f"a conversation must be {expected}, got {type(messages).__name__}")
    for turn in messages:
        if not isinstance(turn, dict) or not isinstance(turn.get("content"), str):
            raise CookbookInputError(
                f"each turn must be a dict with a string 'content' ({expected}), got {turn!r}"[:300]
            )
        if turn.get("role") not in ROLES:
            raise CookbookInputError(f"unknown role {turn.get('role')!r} in a conversation: expected {expected}")
    if not any(turn["role"] == "assistant" for turn in messages):
        raise CookbookInputError("a conversation has no assistant turn, so nothing to learn from: drop it or fix it")
    return list(messages)


def _token_count(tokenizer: PreTrainedTokenizerBase, messages: list[dict], add_generation_prompt: bool) -> int:
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def tokenize_conversation(messages: list[dict], tokenizer: PreTrainedTokenizerBase, max_length: int) -> dict:
    """Token ids, attention mask and labels with every non-assistant token set to IGNORE_INDEX."""
    if tokenizer.chat_template is None:
        raise CookbookInputError("the tokenizer has no chat template: set tokenizer.chat_template before tokenizing")
    messages = validate_conversation(messages)
    text = tokenizer.apply_chat_template(messages, tokenize=False)
    input_ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    labels = [IGNORE_INDEX] * len(input_ids)
    for index, turn in enumerate(messages):
        if turn["role"] == "assistant":
            start = _token_count(tokenizer, messages[:index], add_generation_prompt=True)
            end = _token_count(tokenizer, messages[: index + 1], add_generation_prompt=False)
            labels[start:end] = input_ids[start:end]
    input_ids, labels = input_ids[:max_length], labels[:max_length]
    return {"input_ids": input_ids, "attention_mask": [1] * len(input_ids), "labels": labels}


def show_loss_mask(example: dict, tokenizer: PreTrainedTokenizerBase) -> str:
    """Render one tokenized example with the tokens that carry loss in [brackets]."""
    pieces = []
    for token_id, label in zip(example["input_ids"], example["labels"], strict=True):
        piece = tokenizer.decode([token_id])
        pieces.append(f"[{piece}]" if label != IGNORE_INDEX else piece)
    return "".join(pieces)


def prompt_messages(messages: list[dict]) -> list[dict]:
    """The conversation up to (not including) its last assistant turn: what a model is asked at inference."""
    last = max(i for i, turn in enumerate(messages) if turn["role"] == "assistant")
    return messages[:last]
