"""Batched greedy evaluation (left padding) gives the replies of one-at-a-time greedy decoding."""

import torch

from cookbook.rewards import batched_greedy_replies
from cookbook.smoke.tiny_model import TinyModelSpec, build_tiny_model
from cookbook.training import generate_replies


def test_batched_replies_equal_one_at_a_time():
    model, tokenizer = build_tiny_model(TinyModelSpec(num_hidden_layers=2))
    conversations = [
        [{"role": "user", "content": text}]
        for text in ("What is 2 plus 3?", "Hi", "Tom has 3 apples and buys 4 more. How many now?", "Count to five.")
    ]
    with torch.no_grad():
        one_by_one = generate_replies(model, tokenizer, conversations, max_new_tokens=12)
    batched = batched_greedy_replies(model, tokenizer, conversations, max_new_tokens=12, batch_size=3)
    assert batched == one_by_one
    assert len({reply["reply"] for reply in batched}) > 1  # different prompts, different replies
