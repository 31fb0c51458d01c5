"""Conversations in, token ids and a loss mask out: the step where chat fine-tuning most often goes wrong.

Loss belongs on the assistant's tokens only, plus the end-of-turn token after each reply (so the model
learns to stop); the system's and user's tokens, the role headers and anything the template adds around a
reply (Llama 3's date lines, Qwen3's empty `<think>` block) are context. The conversation is rendered once
with the tokenizer's own chat template; each assistant reply is found in that text by character offsets,
and a token carries loss when its characters lie in a reply or its end-of-turn token. This needs no
`{% generation %}` markers and stays right for templates that render a turn differently once it is no
longer the last (Qwen3) or close the conversation with an extra EOS (Phi-3), where rendering prefixes of
the conversation would put user tokens under the mask. `sft_data` hands the same mask to TRL's SFTTrainer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from transformers import PreTrainedTokenizerBase

from cookbook.errors import CookbookInputError

ROLES = ("system", "user", "assistant")
IGNORE_INDEX = -100  # label value the cross-entropy loss skips


def validate_conversation(messages: object) -> list[dict]:
    """Check one conversation is a list of {"role", "content"} turns with known roles and an assistant turn."""
    expected = 'a list of {"role": "system"|"user"|"assistant", "content": str} messages'
    if not isinstance(messages, Sequence) or isinstance(messages, str) or not messages:
        raise CookbookInputError(f"a conversation must be {expected}, got {type(messages).__name__}")
    for turn in messages:
        if not isinstance(turn, dict) or not isinstance(turn.get("content"), str):
            raise CookbookInputError(
                f"each turn must be a dict with a string 'content' ({expected}), got {turn!r}"[:300]
            )
        if turn.get("role") not in ROLES:
            raise CookbookInputError(f"unknown role {turn.get('role')!r} in a conversation: expected {expected}")
    if not any(turn["role"] == "assistant" for turn in messages):
        raise CookbookInputError("a conversation has no assistant turn, so nothing to learn from: drop it or fix it")
    return list(messages)


def _special_tokens(tokenizer: PreTrainedTokenizerBase) -> list[str]:
    tokens = set(tokenizer.all_special_tokens) | {
        token for token, added in tokenizer.added_tokens_decoder.items() if added.special for token in [added.content]
    }
    return sorted((token for token in tokens if token), key=len, reverse=True)


def render(tokenizer: PreTrainedTokenizerBase, messages: list[dict], **kwargs) -> str:
    """The chat template's text for `messages`, with the template's own error turned into one line."""
    if tokenizer.chat_template is None:
        raise CookbookInputError(
            "the tokenizer has no chat template: call cookbook.sft_data.ensure_chat_template(tokenizer, model) first"
        )
    try:
        return tokenizer.apply_chat_template(messages, tokenize=False, **kwargs)
    except Exception as error:  # jinja's raise_exception: e.g. Gemma has no system role
        raise CookbookInputError(
            f"the chat template rejects this conversation ({error}): fix the data, e.g. merge the system prompt "
            "into the first user turn for templates without a system role"
        ) from error


def supports_system_role(tokenizer: PreTrainedTokenizerBase) -> bool:
    """Whether the chat template accepts a system turn (Gemma 1/2's raises "System role not supported")."""
    try:
        tokenizer.apply_chat_template(
            [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}], tokenize=False
        )
    except Exception:
        return False
    return True


def fit_conversation(tokenizer: PreTrainedTokenizerBase, messages: list[dict]) -> list[dict]:
    """The conversation as the template accepts it: for a template without a system role, the system prompt
    is merged into the first user turn (what Gemma's model card prescribes); other templates get it as is."""
    if not messages or messages[0]["role"] != "system" or supports_system_role(tokenizer):
        return messages
    system, *rest = messages
    if not rest or rest[0]["role"] != "user":
        raise CookbookInputError(
            "this chat template has no system role and the system turn is not followed by a user turn to merge "
            "it into: drop the system turn or start the conversation with a user turn"
        )
    return [{"role": "user", "content": f"{system['content']}\n\n{rest[0]['content']}"}, *rest[1:]]


def end_of_turn_token(tokenizer: PreTrainedTokenizerBase) -> str:
    """The special token the chat template puts right after an assistant reply (`<|im_end|>` for ChatML,
    `<|eot_id|>` for Llama 3, `<end_of_turn>` for Gemma, `<|end|>` for Phi-3).

    Generation must stop at this token, so it has to be the EOS the model generates with
    (`cookbook.training.align_end_of_turn`).
    """
    marker = "MARKER-7f3a"
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": marker}]
    rendered = render(tokenizer, messages)
    after = rendered[rendered.index(marker) + len(marker) :]
    for match in re.finditer("|".join(re.escape(token) for token in _special_tokens(tokenizer)), after):
        return match.group(0)
    raise CookbookInputError(
        "the chat template ends an assistant turn with no special token, so a model cannot learn to stop: "
        "use a template whose assistant turns end with one (ChatML's <|im_end|>, say)"
    )


def align_end_of_turn(tokenizer: PreTrainedTokenizerBase, model=None, verbose: bool = True) -> str:
    """Make the template's end-of-turn token the tokenizer's EOS and the first stop token of the model's
    `generation_config` (the original EOS stays in the list), and return it.

    Base checkpoints often end a turn with another token than their EOS (base Qwen2.5: `<|im_end|>` closes a
    turn, EOS is `<|endoftext|>`; Llama 3: `<|eot_id|>` vs `<|end_of_text|>`). Training teaches the
    end-of-turn token; if generation and serving (vLLM, llama.cpp read the saved tokenizer and
    generation_config) stop only at the old EOS, the tuned model never stops. Save the tokenizer and the
    generation config with the model or adapter so the folder serves correctly as it is.
    """
    end_of_turn = end_of_turn_token(tokenizer)
    original = tokenizer.eos_token
    if original != end_of_turn:
        tokenizer.eos_token = end_of_turn
    if model is not None:
        end_id = tokenizer.convert_tokens_to_ids(end_of_turn)
        configured = model.generation_config.eos_token_id
        configured = [configured] if isinstance(configured, int) else list(configured or [])
        original_id = tokenizer.convert_tokens_to_ids(original) if original else None
        stop_ids = [end_id] + [i for i in [*configured, original_id] if i is not None and i != end_id]
        model.generation_config.eos_token_id = list(dict.fromkeys(stop_ids))
        if model.generation_config.pad_token_id is None:
            model.generation_config.pad_token_id = tokenizer.pad_token_id
    if verbose:
        print(f"end of turn {end_of_turn!r} is now the EOS (was {original!r}); generation stops there")
    return end_of_turn


def assistant_spans(
    text: str, messages: list[dict], end_of_turn: str, prompt_texts: dict[int, str] | None = None
) -> list[tuple[int, int]]:
    """Character spans of each assistant reply in the rendered `text`, each extended over the end-of-turn
    token that follows it. Turns are looked up in order, each after the previous one, so a reply that repeats
    the user's words is found in its own turn.

    A reply the template rewrites (Qwen3 moves a `<think>...</think>` prefix into its own block, and renders it
    only in the last turn) is not in the text verbatim; for such a turn `prompt_texts[index]`, the conversation
    before it rendered with the generation prompt, marks where the reply starts: the model is trained on all
    it would have to generate after that prompt, up to and including the end-of-turn token.
    """
    spans, cursor = [], 0
    for index, turn in enumerate(messages):
        content = turn["content"]
        start = text.find(content, cursor)
        if start < 0:  # templates often strip the content (Llama 3, Gemma)
            content = content.strip()
            start = text.find(content, cursor)
        if start < 0 and turn["role"] == "assistant":
            prompt = (prompt_texts or {}).get(index)
            if prompt is None or not text.startswith(prompt) or len(prompt) < cursor:
                raise CookbookInputError(
                    f"the chat template does not render the assistant reply {turn['content'][:60]!r} verbatim, so "
                    "its tokens cannot be located: check the template (or the reply's <think> block)"
                )
            start, content = len(prompt), ""
        if start < 0:
            continue  # a template may drop or rewrite context turns; only replies must be found
        end = start + len(content)
        cursor = end
        if turn["role"] != "assistant":
            continue
        closing = text.find(end_of_turn, end)
        if closing < 0 or (content and text[end:closing].strip()):
            raise CookbookInputError(
                f"the assistant reply {turn['content'][:60]!r} is not followed by {end_of_turn!r} in the rendered "
                "template: the model could not learn to stop; check the chat template"
            )
        cursor = closing + len(end_of_turn)
        spans.append((start, cursor))
    return spans


def tokenize_conversation(
    messages: list[dict], tokenizer: PreTrainedTokenizerBase, max_length: int, trained_replies_from: int = 0
) -> dict:
    """Token ids, attention mask and labels with every token outside an assistant reply (and its end-of-turn
    token) set to IGNORE_INDEX. `trained_replies_from` skips the first replies (a prompt-completion row trains
    its completion only, not the assistant turns of its prompt)."""
    messages = fit_conversation(tokenizer, validate_conversation(messages))
    text = render(tokenizer, messages)
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    input_ids = encoded["input_ids"]
    rewritten = {  # replies the template does not render verbatim: where their generation starts
        index: render(tokenizer, messages[:index], add_generation_prompt=True)
        for index, turn in enumerate(messages)
        if turn["role"] == "assistant" and turn["content"].strip() not in text
    }
    spans = assistant_spans(text, messages, end_of_turn_token(tokenizer), rewritten)[trained_replies_from:]
    labels = [
        token if any(start < span_end and end > span_start for span_start, span_end in spans) else IGNORE_INDEX
        for token, (start, end) in zip(input_ids, encoded["offset_mapping"], strict=True)
    ]
    input_ids, labels = input_ids[:max_length], labels[:max_length]
    return {"input_ids": input_ids, "attention_mask": [1] * len(input_ids), "labels": labels}


def masked_segments(example: dict, tokenizer: PreTrainedTokenizerBase) -> list[str]:
    """The decoded text of each run of consecutive tokens that carry loss: one string per assistant turn."""
    segments, current = [], []
    for token_id, label in zip(example["input_ids"], example["labels"], strict=True):
        if label != IGNORE_INDEX:
            current.append(token_id)
        elif current:
            segments.append(tokenizer.decode(current))
            current = []
    if current:
        segments.append(tokenizer.decode(current))
    return segments


def show_loss_mask(example: dict, tokenizer: PreTrainedTokenizerBase) -> str:
    """Render one tokenized example with the tokens that carry loss in [brackets]."""
    pieces = []
    for token_id, label in zip(example["input_ids"], example["labels"], strict=True):
        piece = tokenizer.decode([token_id])
        pieces.append(f"[{piece}]" if label != IGNORE_INDEX else piece)
    return "".join(pieces)


def prompt_messages(messages: list[dict]) -> list[dict]:
    """The conversation up to (not including) its last assistant turn: what a model is asked at inference."""
    last = max(i for i, turn in enumerate(messages) if turn["role"] == "assistant")
    return messages[:last]
