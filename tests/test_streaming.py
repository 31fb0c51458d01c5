"""The streamed chat prints each reply as it is generated and returns the same text greedy generation gives."""

from cookbook.loading import load_causal_lm, load_tokenizer
from cookbook.smoke.tiny_model import save_tiny_model
from cookbook.streaming import stream_chat
from cookbook.training import generate_replies


def test_streamed_replies_are_printed_and_match_greedy_generation(capsys):
    path = str(save_tiny_model())
    model, tokenizer = load_causal_lm(path), load_tokenizer(path)
    replies = stream_chat(model, tokenizer, ["What color is snow?"], max_new_tokens=12)
    printed = capsys.readouterr().out
    assert printed.startswith("USER: What color is snow?\nMODEL: ")
    assert replies[0].strip() and replies[0].strip() in printed
    expected = generate_replies(model, tokenizer, [[{"role": "user", "content": "What color is snow?"}]], 12)
    assert replies[0] == expected[0]["reply"]
