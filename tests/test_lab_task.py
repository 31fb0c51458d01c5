"""`pixi run lab` works as root (cloud GPU machines, containers) and is unchanged for everyone else."""

import subprocess
import sys

from tools import jupyter_lab
from tools.pixi_manifest import load


def test_a_normal_user_gets_plain_jupyter_lab():
    assert jupyter_lab.lab_command(["--notebook-dir=."], euid=1000) == (["jupyter", "lab", "--notebook-dir=."], None)


def test_root_gets_allow_root_and_a_note_saying_why():
    command, note = jupyter_lab.lab_command(["--notebook-dir=."], euid=0)
    assert command == ["jupyter", "lab", "--notebook-dir=.", "--allow-root"]
    assert "root" in note and "--allow-root" in note


def test_allow_root_is_not_added_twice():
    command, _ = jupyter_lab.lab_command(["--allow-root"], euid=0)
    assert command.count("--allow-root") == 1


def test_the_lab_task_goes_through_the_wrapper(repo_root):
    cmd = load()["tasks"]["lab"]["cmd"]
    assert cmd.startswith("python tools/jupyter_lab.py")
    assert (repo_root / cmd.split()[1]).is_file()


def test_the_wrapper_execs_jupyter_with_the_arguments(tmp_path, monkeypatch):
    """Run as a script with a fake `jupyter` first on PATH: it receives `lab` and the arguments."""
    fake = tmp_path / "jupyter"
    fake.write_text('#!/bin/sh\necho "$@"\n')
    fake.chmod(0o755)
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, jupyter_lab.__file__, "--notebook-dir=.", "--no-browser"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.split()[:3] == ["lab", "--notebook-dir=.", "--no-browser"]
