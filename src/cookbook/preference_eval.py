"""Does a model prefer the chosen reply? Log-probabilities of whole replies, for preference pairs.

DPO's implicit reward, beta * (log pi(y|x) - log pi_ref(y|x)), is what `DPOTrainer.evaluate()` reports as
`eval_rewards/accuracies` and `eval_rewards/margins`. It is zero for every reply while the policy still
equals the reference, so it says nothing about the model a run starts from. `preference_accuracy` asks the
model itself: is log p(chosen | prompt) above log p(rejected | prompt)? That is measurable before and after.
"""

from __future__ import annotations

import torch


def _render(tokenizer, turns: list[dict], add_generation_prompt: bool) -> list[int]:
    text = tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=add_generation_prompt)
    return tokenizer(text, add_special_tokens=False)["input_ids"]


@torch.no_grad()
def reply_logp(model, tokenizer, prompt: list[dict], reply: list[dict]) -> tuple[float, int]:
    """Sum of log p(token) over the reply's tokens (its end-of-turn token included), given the prompt turns,
    and the number of those tokens."""
    prompt_ids = _render(tokenizer, prompt, add_generation_prompt=True)
    full_ids = _render(tokenizer, prompt + reply, add_generation_prompt=False)
    start = 0
    while start < min(len(prompt_ids), len(full_ids)) and prompt_ids[start] == full_ids[start]:
        start += 1
    ids = torch.tensor([full_ids], device=model.device)
    logps = torch.log_softmax(model(input_ids=ids).logits[0, :-1].float(), dim=-1)
    targets = ids[0, 1:]
    token_logps = logps.gather(1, targets[:, None])[:, 0]
    reply_logps = token_logps[start - 1 :]
    return reply_logps.sum().item(), len(reply_logps)


def preference_accuracy(model, tokenizer, rows: list[dict]) -> dict:
    """How often the model ranks the chosen reply above the rejected one, by mean log-probability per reply token
    (`accuracy`) and by summed log-probability (`accuracy_summed`), with the mean per-token gap."""
    model.eval()
    per_token_gaps, summed_gaps = [], []
    for row in rows:
        (chosen, n_chosen), (rejected, n_rejected) = (
            reply_logp(model, tokenizer, row["prompt"], row[reply]) for reply in ("chosen", "rejected")
        )
        per_token_gaps.append(chosen / n_chosen - rejected / n_rejected)
        summed_gaps.append(chosen - rejected)
    return {
        "accuracy": sum(gap > 0 for gap in per_token_gaps) / len(rows),
        "accuracy_summed": sum(gap > 0 for gap in summed_gaps) / len(rows),
        "mean_per_token_gap": sum(per_token_gaps) / len(rows),
    }
