"""Small pieces around a Trainer that every recipe needs: resuming from the last checkpoint, and greedy replies
that tell whether generation stopped at EOS."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers.trainer_utils import get_last_checkpoint


def last_checkpoint(output_dir: str | Path) -> str | None:
    """The newest `checkpoint-N` folder in `output_dir`, to resume an interrupted run from (None if none)."""
    output_dir = Path(output_dir)
    checkpoint = get_last_checkpoint(str(output_dir)) if output_dir.is_dir() else None
    if checkpoint:
        print(f"Resuming from {checkpoint}")
    return checkpoint


@torch.no_grad()
def generate_replies(model, tokenizer, conversations: list[list[dict]], max_new_tokens: int = 64) -> list[dict]:
    """Greedy replies to each conversation (ending in a user turn), and whether each stopped at EOS."""
    model.eval()
    replies = []
    for messages in conversations:
        inputs = tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        ).to(model.device)
        output = model.generate(
            **inputs, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id
        )
        new_tokens = output[0, inputs["input_ids"].shape[1] :].tolist()
        stopped = tokenizer.eos_token_id in new_tokens
        replies.append({"reply": tokenizer.decode(new_tokens, skip_special_tokens=True), "stopped_at_eos": stopped})
    return replies
