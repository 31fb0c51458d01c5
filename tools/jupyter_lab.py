"""Start JupyterLab for `pixi run lab`, also as root.

JupyterLab refuses to start as root unless given --allow-root. Cloud GPU machines and containers
often run as root, so there this adds the flag and says why; for everyone else the command is
unchanged. Arguments are passed on to `jupyter lab`.
"""

from __future__ import annotations

import os
import sys

ROOT_NOTE = (
    "note: running as root (usual on cloud GPU machines and in containers), so JupyterLab starts with "
    "--allow-root; run as a normal user where you can."
)


def lab_command(args: list[str], euid: int) -> tuple[list[str], str | None]:
    """The `jupyter lab` command line for this user, and the note to print (None when there is none)."""
    command = ["jupyter", "lab", *args]
    if euid == 0 and "--allow-root" not in args:
        return [*command, "--allow-root"], ROOT_NOTE
    return command, None


def main(argv: list[str]) -> None:
    command, note = lab_command(argv, os.geteuid())
    if note:
        print(note, file=sys.stderr, flush=True)
    os.execvp(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
