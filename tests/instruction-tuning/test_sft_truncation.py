"""`drop_lost_to_truncation` measures SFT rows as TRL's SFTTrainer tokenizes them: it counts the rows it cuts, and
drops exactly the rows SFTTrainer would otherwise drop without a word (or, when packing, train on for nothing)."""

import datasets
import pytest
from trl import SFTConfig, SFTTrainer

from cookbook.loading import load_causal_lm, load_tokenizer
from cookbook.smoke.tiny_model import save_tiny_model
from cookbook.truncation import drop_lost_to_truncation

MAX_LENGTH = 48


def turns(user_words: int, assistant_words: int) -> list[dict]:
    return [
        {"role": "user", "content": " ".join(["apple"] * user_words)},
        {"role": "assistant", "content": " ".join(["pear"] * assistant_words)},
    ]


@pytest.mark.parametrize("layout", ["messages", "prompt-completion"])
def test_sft_rows_lost_to_truncation_are_counted_and_dropped_as_trl_would(layout, tmp_path):
    shapes = [(3, 3), (3, 200), (200, 3), (100, 100), (2, 5)]
    if layout == "messages":
        rows = [{"messages": turns(*shape)} for shape in shapes]
    else:
        rows = [{"prompt": turns(*shape)[:1], "completion": turns(*shape)[1:]} for shape in shapes]
    dataset = datasets.Dataset.from_list(rows)
    model = str(save_tiny_model())
    tokenizer = load_tokenizer(model)

    kept, report = drop_lost_to_truncation(dataset, tokenizer, MAX_LENGTH)

    assert (report.examples, report.cut, report.dropped, len(kept)) == (5, 3, 2, 3)
    args = SFTConfig(
        output_dir=str(tmp_path),
        max_length=MAX_LENGTH,
        assistant_only_loss=layout == "messages",
        use_cpu=True,
        bf16=False,
        report_to="none",
    )
    trl_kept = SFTTrainer(model=load_causal_lm(model), args=args, train_dataset=dataset, processing_class=tokenizer)
    assert len(trl_kept.train_dataset) == len(kept)  # SFTTrainer drops the same rows, silently
    after = SFTTrainer(model=load_causal_lm(model), args=args, train_dataset=kept, processing_class=tokenizer)
    assert len(after.train_dataset) == len(kept)  # and none more once they are gone
