"""cookbook.deeplake_data: Deep Lake text datasets, their one-line errors, and the packed block stream."""

import itertools
import math

import deeplake
import pytest
import torch

from cookbook.deeplake_data import (
    PackedTextStream,
    open_text_dataset,
    perplexity,
    write_text_dataset,
)
from cookbook.errors import CookbookInputError
from cookbook.loading import load_causal_lm, load_tokenizer
from cookbook.smoke.data import worked_problems_text
from cookbook.smoke.tiny_model import save_tiny_model


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(str(save_tiny_model()))


@pytest.fixture
def corpus_url(tmp_path):
    url = str(tmp_path / "corpus")
    write_text_dataset(url, worked_problems_text(40, seed=3), message="forty problems")
    return url


def test_write_commits_a_version_and_reuses_it(corpus_url):
    ds = open_text_dataset(corpus_url)
    assert len(ds) == 40
    assert [version.message for version in ds.history][-1] == "forty problems"
    assert ds.pytorch()[0]["text"] == worked_problems_text(40, seed=3)[0]
    version = ds.version
    assert write_text_dataset(corpus_url, ["something else"]) == version  # not overwritten
    assert len(open_text_dataset(corpus_url)) == 40


def one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


def test_missing_dataset_wrong_column_and_empty_dataset_are_one_line_errors(tmp_path):
    with pytest.raises(CookbookInputError) as error:
        open_text_dataset(str(tmp_path / "nowhere"))
    assert "no Deep Lake dataset" in one_line(error)

    ds = deeplake.create(str(tmp_path / "body"))
    ds.add_column("body", deeplake.types.Text())
    ds.append({"body": ["some text"]})
    ds.commit()
    with pytest.raises(CookbookInputError) as error:
        open_text_dataset(str(tmp_path / "body"), "text")
    assert "no 'text' column" in one_line(error) and "body" in one_line(error)

    ds = deeplake.create(str(tmp_path / "empty"))
    ds.add_column("text", deeplake.types.Text())
    ds.commit()
    with pytest.raises(CookbookInputError) as error:
        open_text_dataset(str(tmp_path / "empty"))
    assert "0 rows" in one_line(error)

    blank = str(tmp_path / "blank")
    ds = deeplake.create(blank)
    ds.add_column("text", deeplake.types.Text())
    ds.append({"text": ["", "   "]})
    ds.commit()
    with pytest.raises(CookbookInputError):
        open_text_dataset(blank)


def test_blocks_are_the_documents_joined_by_eos_in_order(corpus_url, tokenizer):
    texts = worked_problems_text(40, seed=3)
    expected = [
        t for text in texts for t in [*tokenizer(text, add_special_tokens=False)["input_ids"], tokenizer.eos_token_id]
    ]
    blocks = list(PackedTextStream(corpus_url, tokenizer, 32, shuffle=False, repeat=False, rows_per_read=7))
    assert len(blocks) == len(expected) // 32
    assert [t for block in blocks for t in block["input_ids"].tolist()] == expected[: len(blocks) * 32]
    assert all((block["labels"] == block["input_ids"]).all() for block in blocks)


def test_stream_is_deterministic_per_seed_and_reshuffles_each_pass(corpus_url, tokenizer):
    def first(n, seed):
        stream = PackedTextStream(corpus_url, tokenizer, 32, seed=seed)
        return [block["input_ids"].tolist() for block in itertools.islice(stream, n)]

    one_pass = len(list(PackedTextStream(corpus_url, tokenizer, 32, seed=0, repeat=False)))
    assert first(3 * one_pass, seed=0) == first(3 * one_pass, seed=0)  # repeat: runs past the end of the corpus
    assert first(5, seed=0) != first(5, seed=1)
    assert first(2 * one_pass, seed=0)[:5] != first(2 * one_pass, seed=0)[one_pass : one_pass + 5]


def test_eval_stream_stops_after_max_blocks(corpus_url, tokenizer):
    assert len(list(PackedTextStream(corpus_url, tokenizer, 16, repeat=False, max_blocks=5))) == 5


def test_a_corpus_shorter_than_one_block_is_a_clear_error(tmp_path, tokenizer):
    url = str(tmp_path / "short")
    write_text_dataset(url, ["a few words"])
    with pytest.raises(CookbookInputError) as error:
        next(iter(PackedTextStream(url, tokenizer, 512)))
    assert "fewer than block_size=512 tokens" in one_line(error)


def test_perplexity_is_exp_of_the_mean_token_loss(corpus_url, tokenizer):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the tiny model's matmuls are too small to share out; on a busy CPU one thread is faster
    try:
        check_perplexity(corpus_url, tokenizer)
    finally:
        torch.set_num_threads(threads)


def check_perplexity(corpus_url, tokenizer):
    model = load_causal_lm(str(save_tiny_model()))
    blocks = list(PackedTextStream(corpus_url, tokenizer, 32, shuffle=False, repeat=False))
    with torch.no_grad():
        losses = [model(input_ids=b["input_ids"][None], labels=b["input_ids"][None]).loss.item() for b in blocks]
    assert perplexity(model, blocks, batch_size=3) == pytest.approx(math.exp(sum(losses) / len(losses)), rel=1e-4)
    with pytest.raises(CookbookInputError):
        perplexity(model, [])
