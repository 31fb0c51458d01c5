"""Load models, tokenizers and datasets with safe defaults and one-line errors.

Safe defaults: `trust_remote_code=False` (no code from the hub runs on your machine) and
safetensors weights only (no pickle). A missing model or dataset, or data without the columns a
recipe needs, stops the run before training with a message that says what to do.
"""

from __future__ import annotations

from pathlib import Path

import datasets
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from cookbook.errors import CookbookInputError

SAFE_LOADING = {"trust_remote_code": False, "use_safetensors": True}


def _looks_local(name_or_path: str) -> bool:
    return name_or_path.startswith((".", "/", "~")) or Path(name_or_path).expanduser().exists()


def _missing(kind: str, name_or_path: str, error: Exception) -> CookbookInputError:
    if _looks_local(name_or_path) and not Path(name_or_path).expanduser().exists():
        hint = f"the path {name_or_path} does not exist: check the parameters cell"
    else:
        hint = (
            f"could not load {kind} {name_or_path!r} ({type(error).__name__}): check the id on the Hugging Face hub, "
            "your network, and HF_TOKEN for gated repos, or pass a local path (smoke=True needs no network)"
        )
    return CookbookInputError(hint)


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


def load_splits(name_or_path: str, train_split: str = "train", test_split: str = "test") -> datasets.DatasetDict:
    """Load a dataset's train and test splits from the hub, or from a folder of JSON/JSONL/Parquet files.

    A dataset without a test split gets one: 5% of train, split off with a fixed seed.
    """
    try:
        if Path(name_or_path).is_dir():
            files = {
                split: [str(p) for p in sorted(Path(name_or_path).glob(f"{split}*.*"))]
                for split in (train_split, test_split)
            }
            files = {split: paths for split, paths in files.items() if paths}
            if train_split not in files:
                raise CookbookInputError(
                    f"{name_or_path} has no {train_split}*.jsonl (or .json/.parquet) file: add one or point "
                    "dataset at another folder"
                )
            builder = "parquet" if files[train_split][0].endswith(".parquet") else "json"
            loaded = datasets.load_dataset(builder, data_files=files)
        else:
            loaded = datasets.load_dataset(name_or_path)
    except CookbookInputError:
        raise
    except (FileNotFoundError, ValueError, ConnectionError) as error:
        raise _missing("dataset", name_or_path, error) from error
    if train_split not in loaded:
        raise CookbookInputError(
            f"dataset {name_or_path} has splits {sorted(loaded)} but no {train_split!r}: set train_split"
        )
    if test_split not in loaded:
        loaded = loaded[train_split].train_test_split(test_size=0.05, seed=0)
        return datasets.DatasetDict({"train": loaded["train"], "test": loaded["test"]})
    return datasets.DatasetDict({"train": loaded[train_split], "test": loaded[test_split]})


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
