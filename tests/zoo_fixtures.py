"""Shared by the zoo tests: load a zoo member the way every recipe does, and the multi-turn conversation
whose exact loss mask each test checks."""

from __future__ import annotations

from cookbook.chat import align_end_of_turn
from cookbook.loading import load_causal_lm, load_tokenizer
from cookbook.sft_data import ensure_chat_template
from cookbook.smoke.zoo import save_member

SYSTEM = {"role": "system", "content": "You are a helpful assistant."}
TWO_TURNS = [
    SYSTEM,
    {"role": "user", "content": "What is 2 plus 3?"},
    {"role": "assistant", "content": "It is 5."},
    {"role": "user", "content": "And 1 plus 1?"},
    {"role": "assistant", "content": "It is 2."},
]
# what each member's template closes an assistant turn with
END_OF_TURN = {
    "tiny-llama": "<|im_end|>",
    "qwen2.5-base": "<|im_end|>",
    "llama-3": "<|eot_id|>",
    "gemma": "<end_of_turn>",
    "gpt2": "<|im_end|>",  # no template of its own: the cookbook's ChatML
    "qwen3": "<|im_end|>",
    "phi-3": "<|end|>",
}


def expected_segments(member: str, messages: list[dict] = TWO_TURNS) -> list[str]:
    """The decoded text of each masked run: every assistant reply followed by the end-of-turn token."""
    return [turn["content"] + END_OF_TURN[member] for turn in messages if turn["role"] == "assistant"]


def load_member(member: str, dtype=None, align: bool = True, **model_kwargs):
    """Tokenizer and model of a zoo member, prepared as the recipes prepare them: a chat template where
    there is none, and the end-of-turn token as EOS."""
    path = str(save_member(member))
    tokenizer = load_tokenizer(path)
    model = load_causal_lm(path, **({"dtype": dtype} if dtype else {}), **model_kwargs)
    ensure_chat_template(tokenizer, model)
    if align:
        align_end_of_turn(tokenizer, model, verbose=False)
    return path, tokenizer, model
