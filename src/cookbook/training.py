"""Small pieces around a Trainer that every recipe needs: resuming from the newest
complete checkpoint, and greedy replies that tell whether generation stopped at EOS.

Crash safety: a run killed at any moment (even while writing a checkpoint) resumes, when started again
with the same output folder, from its newest *complete* checkpoint. A checkpoint counts as complete when
its trainer_state.json (which the Trainer writes last) parses, its weights are all there (safetensors
files no shorter than their headers say) and it holds the optimizer state; a torn one is named and skipped.
"""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path

import torch
from transformers import TrainerCallback

from cookbook.chat import end_of_turn_token, fit_conversation

CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
WEIGHT_FILES = ("*.safetensors", "pytorch_model*.bin", "pytorch_model_fsdp*")


def _safetensors_problem(path: Path) -> str | None:
    """Why a .safetensors file is unreadable (cut short by a kill, say), or None if its size matches its header."""
    try:
        with path.open("rb") as handle:
            header_size = struct.unpack("<Q", handle.read(8))[0]
            header = json.loads(handle.read(header_size))
    except (OSError, struct.error, ValueError):
        return f"{path.name} has no readable header"
    end = max((entry["data_offsets"][1] for key, entry in header.items() if key != "__metadata__"), default=0)
    if path.stat().st_size < 8 + header_size + end:
        return f"{path.name} is cut short"
    return None


def checkpoint_problem(checkpoint: str | Path) -> str | None:
    """What makes `checkpoint` unusable for resuming (a run killed while saving it), or None if it is complete."""
    checkpoint = Path(checkpoint)
    try:
        json.loads((checkpoint / "trainer_state.json").read_text())
    except FileNotFoundError:
        return "no trainer_state.json"
    except (OSError, ValueError):
        return "trainer_state.json is cut short"
    weights = [path for pattern in WEIGHT_FILES for path in checkpoint.glob(pattern)]
    if not weights:
        return "no model weights"
    index = checkpoint / "model.safetensors.index.json"
    if index.exists():
        shards = set(json.loads(index.read_text())["weight_map"].values())
        absent = sorted(shard for shard in shards if not (checkpoint / shard).exists())
        if absent:
            return f"weight shard(s) {absent} missing"
    for path in checkpoint.glob("*.safetensors"):
        problem = _safetensors_problem(path)
        if problem:
            return problem
    if not any(checkpoint.glob("optimizer*")) and not any(checkpoint.glob("global_step*")):
        return "no optimizer state"
    return None


def last_checkpoint(output_dir: str | Path) -> str | None:
    """The newest complete `checkpoint-N` folder in `output_dir`, to resume an interrupted run from (None if
    there is none). Newer torn ones (a run killed while saving) are skipped, each named with what it lacks."""
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return None
    folders = [path for path in output_dir.iterdir() if path.is_dir() and CHECKPOINT.match(path.name)]
    for checkpoint in sorted(folders, key=lambda path: int(CHECKPOINT.match(path.name)[1]), reverse=True):
        problem = checkpoint_problem(checkpoint)
        if problem is None:
            print(f"Resuming from {checkpoint}")
            return str(checkpoint)
        print(f"Skipping {checkpoint}: incomplete ({problem}), probably written by a run stopped while saving")
    return None


class StopAfterSteps(TrainerCallback):
    """Stop (after saving a checkpoint) at `steps`: simulates a preempted job without changing the schedule."""

    def __init__(self, steps: int):
        self.steps = steps

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= self.steps:
            control.should_save = True
            control.should_training_stop = True
        return control


def stop_token_id(tokenizer) -> int:
    """The token a reply must end with: the chat template's end-of-turn token (the EOS for a tokenizer without
    a chat template)."""
    token = end_of_turn_token(tokenizer) if tokenizer.chat_template else tokenizer.eos_token
    return tokenizer.convert_tokens_to_ids(token)


@torch.no_grad()
def generate_replies(model, tokenizer, conversations: list[list[dict]], max_new_tokens: int = 64) -> list[dict]:
    """Greedy replies to each conversation (ending in a user turn), with the model's own generation_config
    (as a server would use it), and whether each reply ended at the end-of-turn token.

    `stopped_at_eos` is True only when generation stopped right after the end-of-turn token: a model whose
    generation_config stops only at another EOS runs on past the end of its turn and counts as not stopped.
    """
    model.eval()
    end_of_turn = stop_token_id(tokenizer)
    replies = []
    for messages in conversations:
        inputs = tokenizer.apply_chat_template(
            fit_conversation(tokenizer, messages), add_generation_prompt=True, return_tensors="pt", return_dict=True
        ).to(model.device)
        output = model.generate(
            **inputs, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id
        )
        new_tokens = output[0, inputs["input_ids"].shape[1] :].tolist()
        stopped = bool(new_tokens) and new_tokens[-1] == end_of_turn
        replies.append({"reply": tokenizer.decode(new_tokens, skip_special_tokens=True), "stopped_at_eos": stopped})
    return replies
