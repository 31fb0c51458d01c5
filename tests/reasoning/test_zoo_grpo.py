"""The reasoning recipe (SFT warm start on prompt-completion rows, then GRPO) on every zoo member: no crash,
the completion-only mask exact, fp32 master weights, and the saved policy stops at the end-of-turn token."""

import datasets
import pytest
import torch
from trl import GRPOConfig, GRPOTrainer, SFTConfig, SFTTrainer

from cookbook.chat import fit_conversation, masked_segments
from cookbook.reasoning_data import prepare_problems
from cookbook.rewards import correctness_reward, format_reward
from cookbook.sft_data import PROMPT_COMPLETION, sft_training_data
from cookbook.smoke.data import small_math_problems
from cookbook.smoke.zoo import ZOO
from tests.zoo_fixtures import END_OF_TURN, load_member
from tests.zoo_recipes import end_of_turn_id, saved_stop

pytestmark = pytest.mark.zoo
PROBLEMS = prepare_problems(small_math_problems(16, seed=3))


@pytest.mark.parametrize("member", ZOO)
def test_grpo_recipe(member, tmp_path):
    _, tokenizer, model = load_member(member, dtype=torch.float32)
    rows = datasets.Dataset.from_list([{"prompt": p["prompt"], "completion": p["completion"]} for p in PROBLEMS])
    sft_splits, loss_options = sft_training_data(
        datasets.DatasetDict({"train": rows}), tokenizer, max_length=512, data_format=PROMPT_COMPLETION
    )
    common = {"report_to": "none", "use_cpu": True, "save_strategy": "no", "gradient_checkpointing": False}
    sft = SFTTrainer(
        model=model,
        args=SFTConfig(
            str(tmp_path / "sft"), max_steps=2, per_device_train_batch_size=4, max_length=512, **common, **loss_options
        ),
        train_dataset=sft_splits["train"],
        processing_class=tokenizer,
    )
    row = sft.data_collator([sft.train_dataset[0]])
    row = {"input_ids": row["input_ids"][0].tolist(), "labels": row["labels"][0].tolist()}
    reply = PROBLEMS[0]["completion"][0]["content"]
    if member == "qwen3":  # its template moves the <think> prefix into its own block, as the model must write it
        reasoning, answer = reply.removeprefix("<think>").split("</think>")
        reply = f"<think>\n{reasoning.strip()}\n</think>\n\n{answer.lstrip()}"
    assert masked_segments(row, tokenizer) == [reply + END_OF_TURN[member]]
    sft.train()
    grpo = GRPOTrainer(
        model=sft.model,
        reward_funcs=[correctness_reward, format_reward],
        args=GRPOConfig(
            str(tmp_path / "grpo"),
            max_steps=1,
            per_device_train_batch_size=4,
            num_generations=2,
            max_completion_length=8,
            logging_steps=1,
            **common,
        ),
        train_dataset=datasets.Dataset.from_list(
            [{"prompt": fit_conversation(tokenizer, p["prompt"]), "answer": p["answer"]} for p in PROBLEMS]
        ),
        processing_class=tokenizer,
    )
    grpo.train()
    assert {p.dtype for p in grpo.model.parameters()} == {torch.float32}
    grpo.save_model(str(tmp_path / "policy"))
    tokenizer.save_pretrained(tmp_path / "policy")
    assert saved_stop(tmp_path / "policy", tokenizer) == (END_OF_TURN[member], end_of_turn_id(tokenizer))
