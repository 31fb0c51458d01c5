"""Bad input to a PEFT notebook stops it with the one-line message, before any training starts."""

import pytest

from cookbook.layout import REPO_ROOT
from cookbook.run import run_notebook


@pytest.mark.notebook
def test_qlora_notebook_with_unknown_target_modules_stops_before_training(tmp_path):
    from papermill.exceptions import PapermillExecutionError

    with pytest.raises(PapermillExecutionError) as error:
        run_notebook(REPO_ROOT / "02-PEFT" / "qlora.ipynb", tmp_path, {"target_modules": ["c_attn"]}, smoke=True)
    assert error.value.ename == "CookbookInputError"
    assert "matches no linear layer" in error.value.evalue and "q_proj" in error.value.evalue
    assert not (tmp_path / "metrics.json").exists()
    assert not list(tmp_path.glob("checkpoint-*"))  # no training step ran
