"""Derive the pip install path from pixi.toml, so there is no second hand-kept dependency list.

    python tools/pixi_pip.py write    # requirements/<env>.txt from pixi.toml (run after editing it)
    python tools/pixi_pip.py pin      # requirements/pins.txt from what is installed in this venv
    python tools/pixi_pip.py check    # fail if the files and pixi.toml have drifted apart

`requirements/<env>.txt` lists each pixi environment's packages under their PyPI names, with the
version ranges pixi.toml gives, for the linux-64-cpu platform; `-c pins.txt` then fixes every
package (direct and transitive) to one version. pixi.lock remains the lock for pixi users; the pins
are the pip path's equivalent, used by CI and by users without pixi (Colab, a plain venv).
"""

from __future__ import annotations

import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ROOT / "pixi.toml"
REQUIREMENTS = ROOT / "requirements"
PIP_PLATFORM = "linux-64-cpu"

# conda-forge names whose PyPI name differs; None means "not a PyPI package" (the interpreter, CUDA).
CONDA_TO_PYPI = {
    "pytorch": "torch",
    "pytorch-cpu": "torch",
    "pytorch-gpu": "torch",
    "python": None,
    "cuda-version": None,
}


def load_manifest(path: Path = MANIFEST) -> dict:
    with open(path, "rb") as f:
        return tomllib.load(f)


def conda_to_pep440(spec: str) -> str:
    """Translate the conda match specs this manifest uses (ranges, `X.Y.*`, `*`) to PEP 440."""
    spec = spec.strip()
    if spec in ("", "*"):
        return ""
    parts = []
    for part in spec.split(","):
        part = part.strip()
        if re.fullmatch(r"[0-9][0-9A-Za-z.]*(\.\*)?", part):  # a bare version means "== version"
            part = "==" + part
        parts.append(part)
    SpecifierSet(",".join(parts))  # raises on anything pip could not read
    return ",".join(parts)


def _platform_base(manifest: dict, platform: str) -> str:
    for entry in manifest["workspace"]["platforms"]:
        if isinstance(entry, dict) and entry.get("name") == platform:
            return entry["platform"]
    return platform


def _feature_tables(manifest: dict, env: str) -> list[dict]:
    definition = manifest["environments"][env]
    if isinstance(definition, list):
        definition = {"features": definition}
    tables = [] if definition.get("no-default-feature") else [manifest]
    tables += [manifest.get("feature", {})[name] for name in definition.get("features", [])]
    return tables


def environment_requirements(manifest: dict, env: str, platform: str = PIP_PLATFORM) -> dict[str, str]:
    """PyPI name -> PEP 440 range for every package of `env` on `platform` (the project itself excluded)."""
    targets = (platform, _platform_base(manifest, platform))
    requirements: dict[str, list[str]] = {}
    for table in _feature_tables(manifest, env):
        sections = [table]
        sections += [table.get("target", {}).get(name, {}) for name in dict.fromkeys(targets)]
        for section in sections:
            for key, is_conda in (("dependencies", True), ("pypi-dependencies", False)):
                for name, spec in section.get(key, {}).items():
                    if isinstance(spec, dict):
                        if "path" in spec or "git" in spec:
                            continue
                        spec = spec.get("version", "*")
                    pypi_name = CONDA_TO_PYPI.get(name, name) if is_conda else name
                    if pypi_name is None:
                        continue
                    requirements.setdefault(canonicalize_name(pypi_name), []).append(
                        conda_to_pep440(spec) if is_conda else spec.strip().replace("*", "") or ""
                    )
    return {name: ",".join(sorted({s for s in specs if s})) for name, specs in sorted(requirements.items())}


def render_requirements(manifest: dict, env: str) -> str:
    lines = [
        "# Generated from pixi.toml by `python tools/pixi_pip.py write`: do not edit by hand.",
        f"# The pip path for the pixi environment {env!r} ({PIP_PLATFORM} platform); pins.txt fixes the versions.",
        "-c pins.txt",
    ]
    lines += [f"{name}{spec}" for name, spec in environment_requirements(manifest, env).items()]
    return "\n".join(lines) + "\n"


def write(manifest: dict) -> None:
    REQUIREMENTS.mkdir(exist_ok=True)
    for env in manifest["environments"]:
        (REQUIREMENTS / f"{env}.txt").write_text(render_requirements(manifest, env))


def installed_closure(names: list[str]) -> dict[str, str]:
    """Installed version of each named distribution and everything it requires, transitively."""
    pins: dict[str, str] = {}
    pending = [Requirement(name) for name in names]
    while pending:
        requirement = pending.pop()
        name = canonicalize_name(requirement.name)
        if name in pins:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError as error:
            raise SystemExit(f"{name} is not installed: pip install -r requirements/default.txt first") from error
        pins[name] = dist.version.split("+")[0]  # torch 2.13.0+cpu -> 2.13.0
        for raw in dist.requires or []:
            dependency = Requirement(raw)
            extras = requirement.extras or {""}
            if dependency.marker is None or any(dependency.marker.evaluate({"extra": e}) for e in extras):
                pending.append(dependency)
    return dict(sorted(pins.items()))


def pin(manifest: dict) -> None:
    names = sorted({name for env in manifest["environments"] for name in environment_requirements(manifest, env)})
    pins = installed_closure(names)
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    header = (
        "# Generated by `python tools/pixi_pip.py pin` from the packages installed for every environment\n"
        f"# of pixi.toml (Python {python}, linux CPU). Regenerate after `pip install -U -r requirements/default.txt`.\n"
    )
    (REQUIREMENTS / "pins.txt").write_text(header + "".join(f"{n}=={v}\n" for n, v in pins.items()))


def read_pins() -> dict[str, str]:
    pins = {}
    for line in (REQUIREMENTS / "pins.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pins[canonicalize_name(name)] = version.strip()
    return pins


def check(manifest: dict) -> list[str]:
    """Every way the pip path can disagree with pixi.toml, one line each (empty when all is well)."""
    problems = []
    for env in manifest["environments"]:
        path = REQUIREMENTS / f"{env}.txt"
        if not path.exists() or path.read_text() != render_requirements(manifest, env):
            problems.append(
                f"{path.relative_to(ROOT)} is out of date with pixi.toml: run python tools/pixi_pip.py write"
            )
    stale = {p.stem for p in REQUIREMENTS.glob("*.txt")} - set(manifest["environments"]) - {"pins"}
    problems += [f"requirements/{name}.txt has no pixi environment: delete it" for name in sorted(stale)]
    pins = read_pins()
    for env in manifest["environments"]:
        for name, spec in environment_requirements(manifest, env).items():
            if name not in pins:
                problems.append(f"{name} (environment {env}) has no pin: run python tools/pixi_pip.py pin")
            elif pins[name] not in SpecifierSet(spec):
                problems.append(f"{name}=={pins[name]} is outside pixi.toml's range {spec!r} (environment {env})")
    return problems


def main(argv: list[str]) -> int:
    manifest = load_manifest()
    command = argv[1] if len(argv) > 1 else "check"
    if command == "write":
        write(manifest)
    elif command == "pin":
        pin(manifest)
    elif command == "check":
        problems = check(manifest)
        print("\n".join(problems) or "requirements/ agrees with pixi.toml")
        return 1 if problems else 0
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
