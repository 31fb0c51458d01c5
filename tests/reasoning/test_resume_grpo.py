"""GRPO interrupted and resumed ends like an uninterrupted run: the completions it samples after the resume are
the same (the RNG state comes back from the checkpoint), so are the rewards, losses and weights; a resume that
lost its optimizer state does not match (tolerances in `cookbook.smoke.resume_check`)."""

import datasets
from trl import GRPOConfig, GRPOTrainer

from cookbook.loading import load_causal_lm, load_tokenizer
from cookbook.reasoning_data import prompt_for
from cookbook.rewards import completion_text
from cookbook.smoke.data import small_math_problems
from cookbook.smoke.resume_check import TRAINING_ARGUMENTS, compare_resume
from cookbook.smoke.tiny_model import save_tiny_model


def length_reward(prompts, completions, **kwargs) -> list[float]:
    """Varies from sample to sample even for an untrained model, so every group has non-zero advantages."""
    return [len(completion_text(completion)) / 40 for completion in completions]


def grpo_trainer(output_dir: str) -> GRPOTrainer:
    model = str(save_tiny_model())
    prompts = [{"prompt": prompt_for(row["question"])} for row in small_math_problems(16, seed=4)]
    args = GRPOConfig(
        output_dir=output_dir,
        max_steps=4,
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=12,
        temperature=1.0,  # sampled, and seeded: the Trainer's seed and the checkpoint's RNG state fix every sample
        beta=0.0,
        gradient_checkpointing=False,  # TRL's default is on; nothing to save on the tiny model
        learning_rate=1e-3,
        **TRAINING_ARGUMENTS,
    )
    return GRPOTrainer(
        model=load_causal_lm(model),
        reward_funcs=[length_reward],
        args=args,
        train_dataset=datasets.Dataset.from_list(prompts),
        processing_class=load_tokenizer(model),
    )


def test_grpo_resume_equals_an_uninterrupted_run(tmp_path):
    comparison = compare_resume(grpo_trainer, tmp_path, stop_after=2)
    comparison.assert_resume_is_equivalent()
