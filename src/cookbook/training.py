"""Small pieces around a Trainer that every recipe needs: resuming, token counts, generation checks."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers.trainer_utils import get_last_checkpoint

from cookbook.chat import end_of_turn_token, fit_conversation


def last_checkpoint(output_dir: str | Path) -> str | None:
    """The newest `checkpoint-N` folder in `output_dir`, to resume an interrupted run from (None if none)."""
    output_dir = Path(output_dir)
    checkpoint = get_last_checkpoint(str(output_dir)) if output_dir.is_dir() else None
    if checkpoint:
        print(f"Resuming from {checkpoint}")
    return checkpoint


def stop_token_id(tokenizer) -> int:
    """The token a reply must end with: the chat template's end-of-turn token (the EOS for a tokenizer without
    a chat template)."""
    token = end_of_turn_token(tokenizer) if tokenizer.chat_template else tokenizer.eos_token
    return tokenizer.convert_tokens_to_ids(token)


@torch.no_grad()
def generate_replies(model, tokenizer, conversations: list[list[dict]], max_new_tokens: int = 64) -> list[dict]:
    """Greedy replies to each conversation (ending in a user turn), with the model's own generation_config
    (as a server would use it), and whether each reply ended at the end-of-turn token.

    `stopped_at_eos` is True only when generation stopped right after the end-of-turn token: a model whose
    generation_config stops only at another EOS runs on past the end of its turn and counts as not stopped.
    """
    model.eval()
    end_of_turn = stop_token_id(tokenizer)
    replies = []
    for messages in conversations:
        inputs = tokenizer.apply_chat_template(
            fit_conversation(tokenizer, messages), add_generation_prompt=True, return_tensors="pt", return_dict=True
        ).to(model.device)
        output = model.generate(
            **inputs, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id
        )
        new_tokens = output[0, inputs["input_ids"].shape[1] :].tolist()
        stopped = bool(new_tokens) and new_tokens[-1] == end_of_turn
        replies.append({"reply": tokenizer.decode(new_tokens, skip_special_tokens=True), "stopped_at_eos": stopped})
    return replies
