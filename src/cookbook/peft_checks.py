"""Checks a PEFT recipe runs before it loads weights or trains: is 4-bit quantization possible here,
and do the requested `target_modules` name any layer of the model? Each failure is one line that
says what to do, raised as `CookbookInputError`.
"""

from __future__ import annotations

import importlib.util
import re

from torch import nn

from cookbook.errors import CookbookInputError

# Leaf module types LoRA can adapt: torch's Linear (bitsandbytes' Linear4bit/Linear8bitLt subclass it)
# and GPT-2-style Conv1D, which is a linear layer with transposed weights.
_LINEAR_TYPE_NAMES = {"Linear", "Linear4bit", "Linear8bitLt", "Conv1D"}
# Output heads that "all-linear" leaves out, as PEFT does.
_OUTPUT_HEADS = {"lm_head", "embed_out", "output", "score", "classifier"}


def require_bitsandbytes() -> str:
    """Return the installed bitsandbytes version, or stop with one line if 4-bit loading is impossible."""
    if importlib.util.find_spec("bitsandbytes") is None:
        raise CookbookInputError(
            "4-bit loading needs bitsandbytes, which is not installed: run `pixi install -e peft` (Linux) or "
            "`pip install bitsandbytes`, or use lora.ipynb, which needs no quantization"
        )
    import bitsandbytes

    return bitsandbytes.__version__


def linear_layer_names(model: nn.Module) -> dict[str, int]:
    """Short names (the last part of the module path) of the model's linear layers, with a count of each.

    These are the names `target_modules` matches against, e.g. q_proj/v_proj in Llama, c_attn in GPT-2.
    """
    counts: dict[str, int] = {}
    for name, module in model.named_modules():
        if type(module).__name__ in _LINEAR_TYPE_NAMES and name:
            short = name.rsplit(".", 1)[-1]
            counts[short] = counts.get(short, 0) + 1
    return counts


def _matches(full_name: str, target_modules: str | list[str]) -> bool:
    """PEFT's rule: a string is a regex that must match the whole module path; a list matches by suffix."""
    if isinstance(target_modules, str):
        return re.fullmatch(target_modules, full_name) is not None
    return any(full_name == key or full_name.endswith("." + key) for key in target_modules)


def check_target_modules(model: nn.Module, target_modules: str | list[str]) -> list[str]:
    """The module paths `target_modules` selects; stop with one line listing the real layer names if none.

    "all-linear" selects every linear layer except the output head, as in PEFT.
    """
    linear = [name for name, module in model.named_modules() if name and type(module).__name__ in _LINEAR_TYPE_NAMES]
    if target_modules == "all-linear":
        selected = [name for name in linear if name.rsplit(".", 1)[-1] not in _OUTPUT_HEADS]
    else:
        if isinstance(target_modules, (list, tuple, set)):
            target_modules = list(target_modules)
        elif not isinstance(target_modules, str):
            raise CookbookInputError(
                f"target_modules={target_modules!r} must be a list of layer names, a regex or 'all-linear'"
            )
        selected = [name for name in linear if _matches(name, target_modules)]
    if not selected:
        found = ", ".join(sorted(linear_layer_names(model))) or "none"
        raise CookbookInputError(
            f"target_modules={target_modules!r} matches no linear layer of {type(model).__name__} "
            f"(its linear layers are named: {found}): set target_modules to some of these, or to 'all-linear'"
        )
    return selected
