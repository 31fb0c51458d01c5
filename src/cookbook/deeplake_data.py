"""Text corpora stored in Deep Lake (4.x) and streamed into causal-LM training as fixed-length blocks.

Why Deep Lake rather than a list in memory: the corpus lives in columnar, compressed chunks at a URL
(a local folder here; `s3://`, `gs://`, `az://` work the same), every change is a commit you can name
and go back to, and training reads rows on demand through `ds.pytorch()`, so a corpus larger than RAM
(or than the local disk) trains the same way as a small one.

`PackedTextStream` reads rows through Deep Lake's PyTorch integration in a seeded order, tokenizes
them, joins documents with the EOS token and cuts the token stream into blocks of `block_size`: no
padding, every token carries loss. Its output is a pure function of (dataset version, seed), which is
what lets an interrupted run resume on exactly the batches it would have seen.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator

import deeplake
import torch
from torch.utils.data import DataLoader, IterableDataset

from cookbook.errors import CookbookInputError


def write_text_dataset(url: str, texts: Iterable[str], text_column: str = "text", message: str = "add corpus") -> str:
    """Create a Deep Lake dataset at `url` with one text column, append `texts` and commit.

    An existing dataset at `url` is reused untouched (delete the folder to rebuild it), so a rerun
    trains on the same committed version. Returns the version id of the head commit.
    """
    if deeplake.exists(url):
        ds = deeplake.open_read_only(url)
        print(f"Reusing the Deep Lake dataset at {url} ({len(ds)} rows, version {ds.version})")
        return ds.version
    texts = [text for text in texts if text and text.strip()]
    ds = deeplake.create(url)
    ds.add_column(text_column, deeplake.types.Text())
    ds.append({text_column: texts})
    ds.commit(message)
    print(f"Wrote {len(texts)} rows to {url}, committed as version {ds.version}: {message!r}")
    return ds.version


def open_text_dataset(url: str, text_column: str = "text") -> deeplake.ReadOnlyDataset:
    """Open a Deep Lake dataset read-only and check it has a non-empty `text_column`; else one-line error."""
    if not deeplake.exists(url):
        raise CookbookInputError(
            f"no Deep Lake dataset at {url}: build it first (the notebook's data cell) or fix the path"
        )
    ds = deeplake.open_read_only(url)
    columns = [column.name for column in ds.schema.columns]
    if text_column not in columns:
        raise CookbookInputError(
            f"Deep Lake dataset {url} has no {text_column!r} column (it has {columns}): set text_column to the column "
            "that holds the text"
        )
    if len(ds) == 0 or not any(text and text.strip() for text in ds[text_column][0 : min(len(ds), 1000)]):
        raise CookbookInputError(
            f"Deep Lake dataset {url} has no text in column {text_column!r} ({len(ds)} rows): append rows and commit"
        )
    return ds


def _column_values(rows: list[dict], column: str) -> list[str]:
    """The non-empty texts of a batch of rows (Deep Lake returns an empty text cell as None)."""
    return [row[column] for row in rows if row[column]]


class PackedTextStream(IterableDataset):
    """Blocks of `block_size` token ids (as `input_ids` and `labels`) streamed from a Deep Lake text column.

    `repeat=True` (training) cycles over the corpus forever, reshuffling rows with `seed + epoch`;
    the Trainer's `max_steps` decides when to stop. `repeat=False` (evaluation) makes one pass in
    stored order. `max_blocks` caps the number of blocks of one pass (a quick held-out set).
    """

    def __init__(
        self,
        url: str,
        tokenizer,
        block_size: int,
        text_column: str = "text",
        seed: int = 0,
        shuffle: bool = True,
        repeat: bool = True,
        max_blocks: int | None = None,
        rows_per_read: int = 256,
        num_workers: int = 0,
    ):
        if block_size < 2:
            raise CookbookInputError(f"block_size must be at least 2 tokens, got {block_size}")
        open_text_dataset(url, text_column)  # fail early, with one line, on a bad dataset
        self.url, self.tokenizer, self.block_size, self.text_column = url, tokenizer, block_size, text_column
        self.seed, self.shuffle, self.repeat, self.max_blocks = seed, shuffle, repeat, max_blocks
        self.rows_per_read, self.num_workers = rows_per_read, num_workers

    def _texts(self, epoch: int) -> Iterator[list[str]]:
        """Lists of raw texts, `rows_per_read` at a time, read through `ds.pytorch()` in this epoch's order."""
        ds = deeplake.open_read_only(self.url)
        if self.shuffle:
            order = torch.randperm(len(ds), generator=torch.Generator().manual_seed(self.seed + epoch)).tolist()
        else:
            order = list(range(len(ds)))
        loader = DataLoader(
            ds.pytorch(),  # Deep Lake's torch Dataset: row i -> {"column": value, ...}, read on demand
            batch_size=self.rows_per_read,
            sampler=order,
            num_workers=self.num_workers,
            collate_fn=functools.partial(_column_values, column=self.text_column),
        )
        yield from loader

    def _one_pass(self, epoch: int) -> Iterator[dict[str, torch.Tensor]]:
        eos = self.tokenizer.eos_token_id
        buffer: list[int] = []
        for texts in self._texts(epoch):
            if not texts:
                continue
            for ids in self.tokenizer(texts, add_special_tokens=False)["input_ids"]:
                buffer.extend([*ids, eos])
            while len(buffer) >= self.block_size:
                block = torch.tensor(buffer[: self.block_size])
                del buffer[: self.block_size]
                yield {"input_ids": block, "labels": block.clone()}

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        epoch = 0
        while True:
            produced = 0
            for block in self._one_pass(epoch):
                yield block
                produced += 1
                if self.max_blocks is not None and produced >= self.max_blocks:
                    break
            if produced == 0:
                raise CookbookInputError(
                    f"Deep Lake dataset {self.url} holds fewer than block_size={self.block_size} tokens: add text or "
                    "lower block_size"
                )
            if not self.repeat:
                return
            epoch += 1


@torch.no_grad()
def perplexity(model, blocks: Iterable[dict[str, torch.Tensor]], batch_size: int = 8) -> float:
    """exp(mean next-token loss) over packed blocks: the held-out figure a full fine-tune should lower."""
    model.eval()
    total_loss, total_tokens, batch = 0.0, 0, []
    device = next(model.parameters()).device

    def flush(batch: list[torch.Tensor]) -> tuple[float, int]:
        ids = torch.stack(batch).to(device)
        n = ids.numel() - ids.shape[0]  # each block predicts block_size - 1 tokens
        return model(input_ids=ids, labels=ids).loss.float().item() * n, n

    for block in blocks:
        batch.append(block["input_ids"])
        if len(batch) == batch_size:
            loss, n = flush(batch)
            total_loss, total_tokens, batch = total_loss + loss, total_tokens + n, []
    if batch:
        loss, n = flush(batch)
        total_loss, total_tokens = total_loss + loss, total_tokens + n
    if total_tokens == 0:
        raise CookbookInputError("no held-out blocks to evaluate: add held-out text or lower block_size")
    return float(torch.exp(torch.tensor(total_loss / total_tokens)))
