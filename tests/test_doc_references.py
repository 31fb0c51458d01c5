"""Every file path, `pixi run` task, `python -m` module, `python` script and `cookbook.` name quoted in the
READMEs, ARCHITECTURE.md and the notebooks' markdown exists.

What counts as a reference:
- inline code that is one path-like token: it ends in a file extension, or ends in `/`, or its first
  component is an entry of the repository root or of the document's folder (so `Qwen/Qwen2.5-0.5B` and
  `completions/clipped_ratio` are names, not paths). It must exist relative to the document's folder or
  the repository root;
- markdown links to anything but a URL or an anchor;
- commands, in inline code or in fenced blocks: `pixi run [-e ENV] TASK` (the environment exists and has
  the task; `pixi run python ...` is checked as the python command), `python -m MODULE` (the module
  resolves with importlib.util.find_spec), `python SCRIPT.py` (the script exists), and path-like arguments
  of those commands;
- `cookbook.module.name` in inline code: the module resolves and defines the name at top level (read with
  ast, so a module whose packages this environment lacks is still checked).

Placeholders (`<...>`), globs, URLs and absolute paths (inside a container) are not references. Files that a
run creates rather than the repository holds are in RUN_OUTPUTS, each with its reason.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from cookbook.layout import REPO_ROOT

DOCUMENTS = sorted(
    [
        REPO_ROOT / "README.md",
        REPO_ROOT / "ARCHITECTURE.md",
        REPO_ROOT / "benchmarks" / "README.md",
        REPO_ROOT / "container" / "README.md",
        *REPO_ROOT.glob("0*/README.md"),
        *REPO_ROOT.glob("0*/*.ipynb"),
    ]
)

# Quoted paths that name what a run or a tool writes, not a file in the repository.
RUN_OUTPUTS = {
    "metrics.json": "every notebook run writes it into its output folder",
    "loss_curve.png": "written next to metrics.json",
    "pixi.lock": "written by `pixi lock` / `pixi install`, never by hand",
    "config.json": "a model folder's config, the planner's input",
    "checkpoint-N/": "the Trainer's checkpoint folders",
    "output_dir/final/": "the full fine-tune's saved model",
    ".pixi/": "pixi's environments folder",
    "planner_gpu.json": "written by benchmarks/check_planner_gpu.py --json",
    "gpu.json": "written by pixi run benchmark --json",
    "adapter_config.json": "written with the adapter by save_pretrained",
    "./my-model": "the reader's own model folder, in an example command",
    "outputs/": "the notebooks' default output folders (git-ignored)",
    "output_dir/runs/": "TensorBoard event files a run writes under its output folder",
    "generation_config.json": "written with a saved model by save_pretrained",
    "trainer_state.json": "the Trainer writes it into each checkpoint folder",
}
# Tools outside this repository that the docs show commands for (not installed here, not claimed to have run).
EXTERNAL = {
    "convert_hf_to_gguf.py": "llama.cpp's converter, in a llama.cpp checkout",
    "llama.cpp/convert_hf_to_gguf.py": "the same script, by its path in a llama.cpp checkout",
}
EXTENSIONS = (".py", ".ipynb", ".md", ".yaml", ".yml", ".toml", ".json", ".txt", ".sh", ".png", ".cfg", ".lock")
NOT_A_PATH = re.compile(r"[<>*$=?{}]|://|^/|^~|^-")
INLINE_CODE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
FENCED_BLOCK = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
COMMAND_START = re.compile(r"(?:^|[\s;&(`\"])((?:pixi run|python -m|python) [^`\n]*)")
COOKBOOK_NAME = re.compile(r"^(cookbook(?:\.\w+)+)(?:\(\))?$")


@dataclass(frozen=True)
class PixiManifest:
    environments: dict[str, set[str]]  # environment -> tasks it can run

    @classmethod
    def read(cls, path: Path) -> PixiManifest:
        manifest = tomllib.loads(path.read_text())
        default_tasks = set(manifest.get("tasks", {}))
        feature_tasks = {name: set(f.get("tasks", {})) for name, f in manifest.get("feature", {}).items()}
        environments = {}
        for name, spec in manifest.get("environments", {}).items():
            features = spec if isinstance(spec, list) else spec.get("features", [])
            tasks = set() if isinstance(spec, dict) and spec.get("no-default-feature") else set(default_tasks)
            for feature in features:
                tasks |= feature_tasks.get(feature, set())
            environments[name] = tasks
        environments.setdefault("default", default_tasks)
        return cls(environments)


def document_text(path: Path) -> str:
    """A markdown file's text, or a notebook's markdown cells joined."""
    if path.suffix != ".ipynb":
        return path.read_text()
    cells = json.loads(path.read_text())["cells"]
    return "\n\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")


def looks_like_path(token: str, folder: Path) -> bool:
    if NOT_A_PATH.search(token) or " " in token or not re.fullmatch(r"[\w./-]+", token):
        return False
    if token.endswith(EXTENSIONS) or token.endswith("/") or token.startswith(("./", "../")):
        return True
    first = token.split("/")[0]
    return "/" in token and ((REPO_ROOT / first).exists() or (folder / first).exists())


def path_exists(token: str, folder: Path) -> bool:
    return token in RUN_OUTPUTS or token in EXTERNAL or any((base / token).exists() for base in (folder, REPO_ROOT))


def module_resolves(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


def top_level_names(module_file: str) -> set[str]:
    tree = ast.parse(Path(module_file).read_text())
    names = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {t.id for t in targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.ImportFrom | ast.Import):
            names |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
    return names


def cookbook_name_problem(dotted: str) -> str | None:
    """None if `dotted` (cookbook.module[.name]) is a module, or a name one defines at top level."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        module = ".".join(parts[:cut])
        if module_resolves(module):
            rest = parts[cut:]
            if not rest:
                return None
            spec = importlib.util.find_spec(module)
            if rest[0] in top_level_names(spec.origin):
                return None
            return f"`{dotted}`: {module} defines no {rest[0]}"
    return f"`{dotted}`: no such module"


def command_problems(command: str, folder: Path, pixi: PixiManifest) -> list[str]:
    try:
        words = shlex.split(command.split("#")[0].replace("\\", ""))
    except ValueError:
        words = command.split()
    problems = []
    if words[:2] == ["pixi", "run"]:
        words = words[2:]
        environment = "default"
        if words and words[0] in ("-e", "--environment"):
            environment, words = words[1], words[2:]
        if environment not in pixi.environments:
            return [f"`{command}`: pixi.toml has no environment {environment!r}"]
        if not words or words[0] == "...":
            return []
        if words[0] != "python":
            if words[0] not in pixi.environments[environment]:
                return [f"`{command}`: environment {environment!r} has no task {words[0]!r}"]
            return [f"`{command}`: {w} does not exist" for w in words[1:] if not argument_ok(w, folder)]
    if words[:2] == ["python", "-m"] and len(words) > 2:
        if not module_resolves(words[2]):
            problems.append(f"`{command}`: module {words[2]} does not resolve")
        words = words[3:]
    elif words[:1] == ["python"] and len(words) > 1 and not words[1].startswith("-"):  # not `python -c ...`
        if not path_exists(words[1], folder):
            problems.append(f"`{command}`: script {words[1]} does not exist")
        words = words[2:]
    return problems + [f"`{command}`: {w} does not exist" for w in words if not argument_ok(w, folder)]


def argument_ok(word: str, folder: Path) -> bool:
    return not looks_like_path(word, folder) or path_exists(word, folder)


def reference_problems(path: Path, pixi: PixiManifest) -> list[str]:
    text, folder = document_text(path), path.parent
    problems = []
    blocks = FENCED_BLOCK.findall(text)
    inline_text = FENCED_BLOCK.sub("", text)
    for code in INLINE_CODE.findall(inline_text):
        code = code.strip()
        if COMMAND_START.match(code):
            continue  # checked below with the other commands
        name = COOKBOOK_NAME.match(code)
        if name:
            problem = cookbook_name_problem(name.group(1))
            problems += [problem] if problem else []
        elif looks_like_path(code, folder) and not path_exists(code, folder):
            problems.append(f"`{code}` does not exist")
    for target in LINK.findall(inline_text):
        if not re.match(r"^(https?:|mailto:|#)", target) and not path_exists(target.split("#")[0], folder):
            problems.append(f"link target {target} does not exist")
    lines = [*INLINE_CODE.findall(inline_text), *(line for block in blocks for line in block.splitlines())]
    for line in lines:
        for command in COMMAND_START.findall(line):
            problems += command_problems(command.strip(), folder, pixi)
    return problems


@pytest.fixture(scope="module")
def pixi():
    return PixiManifest.read(REPO_ROOT / "pixi.toml")


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_every_quoted_path_and_command_exists(document, pixi):
    problems = reference_problems(document, pixi)
    assert not problems, f"{document.relative_to(REPO_ROOT)}:\n" + "\n".join(problems)


def test_the_documents_are_found():
    names = {str(p.relative_to(REPO_ROOT)) for p in DOCUMENTS}
    assert {"README.md", "ARCHITECTURE.md", "benchmarks/README.md", "container/README.md"} <= names
    assert any(n.endswith(".ipynb") for n in names) and sum(n.endswith("README.md") for n in names) >= 7


def test_the_check_reports_each_kind_of_broken_reference(tmp_path, pixi):
    """Not vacuous: a document quoting a missing file, task, environment, module, script and name fails."""
    document = tmp_path / "README.md"
    document.write_text(
        "See `tests/test_nothing_here.py` and [the guide](missing.md).\n"
        "Run `pixi run nonexistent-task`, `pixi run -e nowhere smoke` or `python -m cookbook.no_such_module`.\n"
        "```bash\npython benchmarks/no_such_script.py --flag\npixi run -e peft notebook 02-PEFT/gone.ipynb\n```\n"
        "`cookbook.rewards.no_such_reward` and `cookbook.merging.merge_to_standalone` (this one exists).\n"
    )
    problems = "\n".join(reference_problems(document, pixi))
    for broken in (
        "tests/test_nothing_here.py",
        "missing.md",
        "no task 'nonexistent-task'",
        "no environment 'nowhere'",
        "module cookbook.no_such_module",
        "script benchmarks/no_such_script.py",
        "02-PEFT/gone.ipynb",
        "defines no no_such_reward",
    ):
        assert broken in problems, f"{broken!r} not reported in:\n{problems}"
    assert "merge_to_standalone" not in problems
    hub_ids = tmp_path / "names.md"
    hub_ids.write_text("`Qwen/Qwen2.5-0.5B`, `trl-lib/Capybara` and `completions/clipped_ratio` are names, not paths.")
    assert reference_problems(hub_ids, pixi) == []
