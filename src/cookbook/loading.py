"""Load models, tokenizers and datasets with safe defaults and one-line errors.

Safe defaults: `trust_remote_code=False` (no code from the hub runs on your machine) and
safetensors weights only (no pickle). A missing, gated or unreachable model or dataset, a data file
that is empty, not UTF-8, not JSON lines (named with its line), a Parquet file with another schema,
a column of the wrong type, repeated ids or too few rows to hold some out: each stops the run before
training with one line that says what was wrong and what to do.
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from pathlib import Path

import datasets
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from cookbook.errors import CookbookInputError

SAFE_LOADING = {"trust_remote_code": False, "use_safetensors": True}
TEST_SHARE = 0.05  # held out when a dataset has no test split
ID_COLUMNS = ("id", "uid", "example_id")


def _looks_local(name_or_path: str) -> bool:
    return name_or_path.startswith((".", "/", "~")) or Path(name_or_path).expanduser().exists()


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _error_chain(error: BaseException) -> list[BaseException]:
    chain = []
    while error is not None and error not in chain:
        chain.append(error)
        error = error.__cause__ or error.__context__
    return chain


def _missing(kind: str, name_or_path: str, error: Exception) -> CookbookInputError:
    """Name the likely cause of a failed load: a wrong path, a gated repo, no network, or no such id."""
    if _looks_local(name_or_path) and not Path(name_or_path).expanduser().exists():
        return CookbookInputError(f"the path {name_or_path} does not exist: check the parameters cell")
    chain = _error_chain(error)
    names = {type(e).__name__ for e in chain}
    text = " ".join(str(e) for e in chain).lower()
    if "GatedRepoError" in names or "gated" in text:
        return CookbookInputError(
            f"{kind} {name_or_path!r} is gated on the Hugging Face hub: accept its terms at "
            f"https://huggingface.co/{name_or_path} and export HF_TOKEN, or choose an open {kind}"
        )
    offline = {"OfflineModeIsEnabled", "LocalEntryNotFoundError", "ConnectionError", "ConnectError", "ConnectTimeout"}
    if _hub_offline() or names & offline or "couldn't connect" in text or "couldn't reach" in text:
        return CookbookInputError(
            f"could not reach the Hugging Face hub for {kind} {name_or_path!r} and it is not in the local cache "
            f"(HF_HUB_OFFLINE={os.environ.get('HF_HUB_OFFLINE', 'unset')}): connect once to download it, "
            "or pass a local folder (smoke=True needs no network)"
        )
    if names & {"RepositoryNotFoundError", "DatasetNotFoundError", "RevisionNotFoundError", "FileNotFoundError"}:
        return CookbookInputError(
            f"no {kind} {name_or_path!r} on the Hugging Face hub ({type(error).__name__}): check the id's spelling, "
            "export HF_TOKEN if it is private, or pass a local folder"
        )
    return CookbookInputError(
        f"could not load {kind} {name_or_path!r} ({type(error).__name__}: {str(error).splitlines()[0][:160] if str(error) else ''}): "
        "check the id on the Hugging Face hub, your network, and HF_TOKEN for gated repos, or pass a local path"
    )


def load_tokenizer(name_or_path: str, **kwargs) -> PreTrainedTokenizerBase:
    """Load a tokenizer; give it a pad token (its EOS) if it has none, as batching needs one."""
    try:
        tokenizer = AutoTokenizer.from_pretrained(name_or_path, trust_remote_code=False, **kwargs)
    except (OSError, ValueError) as error:
        raise _missing("tokenizer", name_or_path, error) from error
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_causal_lm(name_or_path: str, dtype: torch.dtype = torch.float32, **kwargs) -> PreTrainedModel:
    """Load a causal LM from the hub or a folder, safetensors only, no remote code."""
    try:
        return AutoModelForCausalLM.from_pretrained(name_or_path, dtype=dtype, **SAFE_LOADING, **kwargs)
    except (OSError, ValueError) as error:
        raise _missing("model", name_or_path, error) from error


# -- local data files: checked line by line before `datasets` reads them --------------------------------------


def _check_json_file(path: Path) -> None:
    """Stop at the first line that is not UTF-8 or not one JSON object (a .json file may also be one array)."""
    raw = path.read_bytes()
    if not raw.strip():
        raise CookbookInputError(f"{path} is empty: put at least 2 rows in it, one JSON object per line")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise CookbookInputError(
            f"{path}, line {line}: byte 0x{raw[error.start]:02x} is not UTF-8 text: re-save the file as UTF-8 "
            "(e.g. iconv -f latin1 -t utf-8)"
        ) from error
    if path.suffix == ".json" and text.lstrip().startswith("["):
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as error:
            raise CookbookInputError(
                f"{path}, line {error.lineno}: not valid JSON ({error.msg}): fix that line"
            ) from error
        if not rows:
            raise CookbookInputError(f"{path} holds an empty list: put at least 2 rows in it")
        return
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise CookbookInputError(
                f"{path}, line {number}: not JSON lines ({error.msg} at column {error.colno}): each line must be "
                'one complete JSON object, e.g. {"messages": [...]}'
            ) from error
        if not isinstance(row, dict):
            raise CookbookInputError(
                f"{path}, line {number}: a JSON {type(row).__name__}, not an object: each line must be one "
                '{"column": value, ...} object'
            )


def _parquet_schema(path: Path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
    except (pa.ArrowInvalid, OSError) as error:
        reason = str(error).splitlines()[0][:160] if str(error) else type(error).__name__
        raise CookbookInputError(
            f"{path} is not a readable Parquet file ({reason}): rewrite it or use JSONL"
        ) from error
    if pq.ParquetFile(path).metadata.num_rows == 0:
        raise CookbookInputError(f"{path} has no rows: put at least 2 rows in it")
    return schema


def _check_parquet_files(paths: list[Path]) -> None:
    """Every Parquet file of a dataset must have the same columns with the same types."""
    first, first_schema = paths[0], _parquet_schema(paths[0])
    for path in paths[1:]:
        schema = _parquet_schema(path)
        if not schema.equals(first_schema, check_metadata=False):
            expected = {f.name: str(f.type) for f in first_schema}
            found = {f.name: str(f.type) for f in schema}
            differs = sorted(n for n in expected.keys() | found.keys() if expected.get(n) != found.get(n))
            raise CookbookInputError(
                f"{path} has another schema than {first.name} (column(s) {differs}: {[found.get(n) for n in differs]} "
                f"vs {[expected.get(n) for n in differs]}): write every file with the same columns and types"
            )


def _local_files(folder: Path, train_split: str, test_split: str) -> dict[str, list[str]]:
    files = {split: sorted(folder.glob(f"{split}*.*")) for split in (train_split, test_split)}
    files = {split: [p for p in paths if p.suffix in (".json", ".jsonl", ".parquet")] for split, paths in files.items()}
    files = {split: paths for split, paths in files.items() if paths}
    if train_split not in files:
        raise CookbookInputError(
            f"{folder} has no {train_split}*.jsonl (or .json/.parquet) file: add one or point dataset at another folder"
        )
    every = [p for paths in files.values() for p in paths]
    kinds = {p.suffix == ".parquet" for p in every}
    if len(kinds) > 1:
        raise CookbookInputError(f"{folder} mixes Parquet and JSON files: convert them to one format")
    if kinds == {True}:
        _check_parquet_files(every)
    else:
        for path in every:
            _check_json_file(path)
    return {split: [str(p) for p in paths] for split, paths in files.items()}


def _load_local(folder: Path, train_split: str, test_split: str) -> datasets.DatasetDict:
    files = _local_files(folder, train_split, test_split)
    builder = "parquet" if files[train_split][0].endswith(".parquet") else "json"
    try:
        return datasets.load_dataset(builder, data_files=files)
    except datasets.exceptions.DatasetGenerationError as error:
        cause = str(_error_chain(error)[-1]).strip().splitlines()
        raise CookbookInputError(
            f"could not read the files in {folder} ({cause[0][:200] if cause else type(error).__name__}): give every row "
            "the same columns, each with one type (e.g. all answers strings, not some numbers)"
        ) from error


# -- checks on the loaded rows ------------------------------------------------------------------------------------


def _is_list(feature) -> bool:
    return isinstance(feature, (list, datasets.Sequence, getattr(datasets, "List", datasets.Sequence)))


def _is_string(feature) -> bool:
    return isinstance(feature, datasets.Value) and feature.dtype in ("string", "large_string")


def _is_number(feature) -> bool:
    return isinstance(feature, datasets.Value) and feature.dtype.startswith(("int", "uint", "float"))


# Columns the recipes read, what they must hold, and how to say it.
EXPECTED_COLUMN_TYPES = {
    "messages": (_is_list, 'a list of {"role", "content"} turns'),
    "text": (_is_string, "a string"),
    "question": (_is_string, "a string"),
    "answer": (lambda f: _is_string(f) or _is_number(f), "a string or a number"),
    "prompt": (lambda f: _is_string(f) or _is_list(f), "a string or a list of turns"),
    "completion": (lambda f: _is_string(f) or _is_list(f), "a string or a list of turns"),
}


def check_column_types(dataset: datasets.Dataset, name: str = "dataset") -> None:
    """Stop with one line when a column a recipe reads holds values of another type (a JSON-encoded string
    where a list of turns belongs, say)."""
    for column, feature in dataset.features.items():
        if column not in EXPECTED_COLUMN_TYPES:
            continue
        accepts, expected = EXPECTED_COLUMN_TYPES[column]
        if not accepts(feature):
            example = repr(dataset[0][column])[:80] if len(dataset) else ""
            holds = "values of mixed types" if type(feature).__name__ == "Json" else str(feature)
            raise CookbookInputError(
                f"{name}: column {column!r} holds {holds} (first value {example}), but recipes expect {expected}: "
                "give every row a value of that one type (e.g. json.loads JSON-encoded strings) or rename the column"
            )


def check_unique_ids(loaded: datasets.DatasetDict, name: str = "dataset") -> None:
    """Repeated ids in a split (rows joined twice?) or shared by train and test (leakage) stop the run."""
    column = next((c for c in ID_COLUMNS if c in loaded["train"].column_names), None)
    if column is None:
        return
    seen = {}
    for split, rows in loaded.items():
        if column not in rows.column_names:
            continue
        counts = Counter(rows[column])
        repeated = [value for value, count in counts.items() if count > 1]
        if repeated:
            raise CookbookInputError(
                f"{name}: {len(repeated)} {column!r} value(s) repeat in the {split} split (e.g. {repeated[0]!r} "
                f"{counts[repeated[0]]} times): deduplicate the rows, or drop the {column!r} column if repeats are intended"
            )
        seen[split] = set(counts)
    if len(seen) == 2:
        shared = set.intersection(*seen.values())
        if shared:
            raise CookbookInputError(
                f"{name}: {len(shared)} {column!r} value(s) are in both train and test (e.g. {next(iter(shared))!r}): "
                "held-out rows must not be trained on; remove them from one split"
            )


def hold_out(train: datasets.Dataset, name: str, share: float = TEST_SHARE, seed: int = 0) -> datasets.DatasetDict:
    """Split `share` of `train` off as a test split (at least one row); stop if that leaves no training row."""
    if len(train) < 2:
        raise CookbookInputError(
            f"{name} has {len(train)} row(s) and no test split: a recipe needs at least 2 rows (one to train on, "
            "one held out to evaluate): add rows, or add a test file"
        )
    test_rows = min(len(train) - 1, max(1, math.ceil(share * len(train))))
    return train.train_test_split(test_size=test_rows, seed=seed)


def load_splits(
    name_or_path: str, train_split: str = "train", test_split: str = "test", config: str | None = None
) -> datasets.DatasetDict:
    """A dataset's train and test splits, from the hub (with an optional config) or from a local folder of
    train*/test* JSON, JSONL or Parquet files (where `config` means nothing and is ignored, with a note).

    A dataset without a test split gets one: 5% of train (at least one row), split off with a fixed seed.
    """
    folder = Path(name_or_path).expanduser()
    try:
        if folder.is_dir():
            if config is not None:
                print(f"note: {name_or_path} is a local folder, so dataset config {config!r} does not apply")
            loaded = _load_local(folder, train_split, test_split)
        elif config is not None:
            loaded = datasets.load_dataset(name_or_path, config)
        else:
            loaded = datasets.load_dataset(name_or_path)
    except CookbookInputError:
        raise
    except (OSError, ValueError, ConnectionError) as error:
        raise _missing("dataset", name_or_path, error) from error
    if train_split not in loaded:
        raise CookbookInputError(
            f"dataset {name_or_path} has splits {sorted(loaded)} but no {train_split!r}: set train_split"
        )
    if test_split in loaded:
        splits = datasets.DatasetDict({"train": loaded[train_split], "test": loaded[test_split]})
    else:
        split = hold_out(loaded[train_split], f"dataset {name_or_path}")
        splits = datasets.DatasetDict({"train": split["train"], "test": split["test"]})
    for split, rows in splits.items():
        check_column_types(rows, f"dataset {name_or_path} ({split})")
    check_unique_ids(splits, f"dataset {name_or_path}")
    return splits


def require_columns(dataset: datasets.Dataset, columns: list[str], what: str) -> None:
    """Stop with one line if `dataset` lacks any of `columns` (`what` names the expected format)."""
    missing = [column for column in columns if column not in dataset.column_names]
    if missing:
        raise CookbookInputError(
            f"dataset has no column(s) {missing} (it has {dataset.column_names}); this recipe expects {what}: "
            "rename the columns or choose another dataset"
        )
    if len(dataset) == 0:
        raise CookbookInputError(f"dataset is empty; this recipe expects {what}: check the split and the files")
