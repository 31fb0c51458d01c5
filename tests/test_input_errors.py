"""Malformed datasets and unreachable ids stop `load_splits` (and the model loaders) with one CookbookInputError
line that names the problem, where it is and what to do, before anything trains."""

import json

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cookbook import loading
from cookbook.errors import CookbookInputError
from cookbook.loading import load_causal_lm, load_splits, load_tokenizer

CHAT_ROW = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}


def write_jsonl(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def one_line_error(call, *fragments) -> str:
    """Run `call`, expect a CookbookInputError of a single line that contains every fragment."""
    with pytest.raises(CookbookInputError) as error:
        call()
    message = str(error.value)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


def test_a_well_formed_folder_loads_and_two_rows_are_enough(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", [CHAT_ROW, CHAT_ROW])
    splits = load_splits(str(tmp_path))
    assert (len(splits["train"]), len(splits["test"])) == (1, 1)


def test_an_empty_file(tmp_path):
    (tmp_path / "train.jsonl").write_text("")
    one_line_error(lambda: load_splits(str(tmp_path)), "train.jsonl is empty", "at least 2 rows")


def test_a_file_that_is_not_json_lines_names_file_and_line(tmp_path):
    path = write_jsonl(tmp_path / "train.jsonl", [CHAT_ROW, CHAT_ROW])
    path.write_text(path.read_text() + "{'messages': 'single quotes are not JSON'}\n")
    one_line_error(
        lambda: load_splits(str(tmp_path)), "train.jsonl, line 3", "not JSON lines", "one complete JSON object"
    )


def test_a_json_array_instead_of_objects(tmp_path):
    (tmp_path / "train.jsonl").write_text('["a", "b"]\n')
    one_line_error(lambda: load_splits(str(tmp_path)), "line 1", "not an object")


def test_a_one_row_dataset(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", [CHAT_ROW])
    one_line_error(lambda: load_splits(str(tmp_path)), "has 1 row(s)", "add rows, or add a test file")


def test_a_column_of_the_wrong_type(tmp_path):
    rows = [{"messages": json.dumps(CHAT_ROW["messages"])}] * 3  # JSON-encoded once too often
    write_jsonl(tmp_path / "train.jsonl", rows)
    one_line_error(lambda: load_splits(str(tmp_path)), "column 'messages'", "list of", "json.loads")


def test_rows_whose_types_disagree(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", [{"question": "1+1", "answer": 2}, {"question": "2+2", "answer": "four"}])
    one_line_error(lambda: load_splits(str(tmp_path)), "column 'answer' holds values of mixed types", "one type")


def test_duplicate_ids_within_a_split(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", [{"id": i % 3, **CHAT_ROW} for i in range(6)])
    write_jsonl(tmp_path / "test.jsonl", [{"id": 10, **CHAT_ROW}])
    one_line_error(lambda: load_splits(str(tmp_path)), "'id' value(s) repeat in the train split", "deduplicate")


def test_ids_shared_by_train_and_test(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", [{"id": i, **CHAT_ROW} for i in range(4)])
    write_jsonl(tmp_path / "test.jsonl", [{"id": 3, **CHAT_ROW}])
    one_line_error(lambda: load_splits(str(tmp_path)), "in both train and test", "remove them from one split")


def test_bytes_that_are_not_utf8(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_bytes(json.dumps(CHAT_ROW).encode() + b"\n" + '{"text": "caf\u00e9"}\n'.encode("latin-1"))
    one_line_error(lambda: load_splits(str(tmp_path)), "train.jsonl, line 2", "0xe9 is not UTF-8", "re-save")


def test_parquet_files_with_another_schema(tmp_path):
    pq.write_table(pa.table({"question": ["1+1", "2+2"], "answer": ["2", "4"]}), tmp_path / "train.parquet")
    pq.write_table(pa.table({"question": ["3+3"], "answer": [6]}), tmp_path / "test.parquet")
    one_line_error(lambda: load_splits(str(tmp_path)), "test.parquet has another schema", "['answer']", "same columns")


def test_a_file_named_parquet_that_is_not_parquet(tmp_path):
    write_jsonl(tmp_path / "train.parquet", [CHAT_ROW, CHAT_ROW])
    one_line_error(lambda: load_splits(str(tmp_path)), "train.parquet is not a readable Parquet file")


def test_a_missing_local_folder():
    one_line_error(lambda: load_splits("./no/such/folder"), "does not exist")


@pytest.fixture
def offline(monkeypatch):
    """The hub as a machine without network sees it (nothing here is ever downloaded)."""
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # read at import time, hence also the module attributes:
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)


@pytest.mark.parametrize("load", [load_splits, load_tokenizer, load_causal_lm], ids=["dataset", "tokenizer", "model"])
def test_an_unreachable_hub_id_says_so_and_how_to_work_offline(offline, load):
    one_line_error(lambda: load("cookbook-tests/no-such-repo"), "could not reach the Hugging Face hub", "local folder")


def hub_raising(error: Exception):
    def load_dataset(*args, **kwargs):
        raise error

    return load_dataset


def test_a_gated_hub_dataset_asks_for_a_token(monkeypatch):
    import httpx
    from huggingface_hub.errors import GatedRepoError

    url = "https://huggingface.co/api/datasets/meta-llama/gated"
    response = httpx.Response(401, request=httpx.Request("GET", url))
    gated = GatedRepoError("401 Client Error: access to dataset meta-llama/gated is restricted", response=response)
    monkeypatch.setattr(loading.datasets, "load_dataset", hub_raising(gated))
    one_line_error(lambda: load_splits("meta-llama/gated"), "is gated", "accept its terms", "HF_TOKEN")


def test_a_missing_hub_dataset_asks_to_check_the_id(monkeypatch):
    from datasets.exceptions import DatasetNotFoundError

    missing = DatasetNotFoundError("Dataset 'openai/gsm9k' doesn't exist on the Hub or cannot be accessed.")
    monkeypatch.setattr(loading.datasets, "load_dataset", hub_raising(missing))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    one_line_error(lambda: load_splits("openai/gsm9k"), "no dataset 'openai/gsm9k' on the Hugging Face hub", "spelling")


def test_a_local_folder_ignores_a_hub_config_with_a_note(tmp_path, capsys):
    write_jsonl(tmp_path / "train.jsonl", [{"question": "1+1", "answer": "2"}] * 4)
    write_jsonl(tmp_path / "test.jsonl", [{"question": "2+2", "answer": "4"}])
    splits = load_splits(str(tmp_path), config="main")
    assert len(splits["test"]) == 1
    assert "config 'main' does not apply" in capsys.readouterr().out
