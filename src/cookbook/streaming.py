"""A short chat with a trained model, its reply printed token by token as it is generated."""

from __future__ import annotations

import torch
from transformers import TextStreamer


@torch.no_grad()
def stream_chat(
    model, tokenizer, questions: list[str], max_new_tokens: int = 64, system: str | None = None
) -> list[str]:
    """Ask each question in turn, one conversation that keeps the earlier turns, streaming every reply to stdout
    through `TextStreamer` (the prompt and the special tokens are not printed). Returns the replies."""
    model.eval()
    streamer = TextStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
    messages = [{"role": "system", "content": system}] if system else []
    replies = []
    for question in questions:
        messages.append({"role": "user", "content": question})
        inputs = tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        ).to(model.device)
        print(f"USER: {question}\nMODEL: ", end="", flush=True)
        output = model.generate(
            **inputs,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            streamer=streamer,
            pad_token_id=tokenizer.pad_token_id,
        )
        reply = tokenizer.decode(output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
        messages.append({"role": "assistant", "content": reply})
        replies.append(reply)
    return replies
