"""Derive the pip install path from pixi.toml, so there is no second hand-kept dependency list.

    python tools/pixi_pip.py write    # requirements/<env>.txt from pixi.toml (run after editing it)
    python tools/pixi_pip.py pin      # requirements/pins.txt: from pixi.lock when it is committed,
                                      # otherwise from what is installed in this venv
    python tools/pixi_pip.py check    # fail if the files and pixi.toml have drifted apart

`requirements/<env>.txt` lists each pixi environment's packages under their PyPI names with the version
ranges pixi.toml gives on every platform of that environment (tools/pixi_manifest.py reads the manifest
the way pixi does: target tables replace the base spec). Where platforms differ, a line carries a pip
environment marker (`; sys_platform == ...`); conda-only packages (python, cuda-version) are listed in
the header, so no change to pixi.toml passes unnoticed. `-c pins.txt` then fixes every package (direct
and transitive) to one version for the linux-64-cpu view. pixi.lock remains the lock for pixi users.

What pip really installs for torch: on Linux x86_64, PyPI's default torch wheel is a CUDA build that
pulls several GB of nvidia-* wheels, which pins.txt does not pin. The generated headers say so and how
to pick PyTorch's CPU wheel instead (its CPU index) or a specific CUDA build.
"""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name

try:
    from tools import pixi_manifest
except ModuleNotFoundError:  # run as a script: python tools/pixi_pip.py
    import pixi_manifest

Platform = pixi_manifest.Platform

ROOT = pixi_manifest.ROOT
MANIFEST = pixi_manifest.MANIFEST
LOCK = ROOT / "pixi.lock"
REQUIREMENTS = ROOT / "requirements"
PIP_PLATFORM = "linux-64-cpu"  # the platform whose versions pins.txt fixes (CI's machines)
CPU_INDEX = "https://download.pytorch.org/whl/cpu"

# conda-forge names whose PyPI name differs; None means "not a PyPI package" (the interpreter, CUDA).
CONDA_TO_PYPI = {
    "pytorch": "torch",
    "pytorch-cpu": "torch",
    "pytorch-gpu": "torch",
    "matplotlib-base": "matplotlib",
    "python": None,
    "cuda-version": None,
}

# The pip environment marker of each conda subdir (PEP 508).
SUBDIR_MARKERS = {
    "linux-64": 'sys_platform == "linux" and platform_machine == "x86_64"',
    "linux-aarch64": 'sys_platform == "linux" and platform_machine == "aarch64"',
    "osx-arm64": 'sys_platform == "darwin" and platform_machine == "arm64"',
    "osx-64": 'sys_platform == "darwin" and platform_machine == "x86_64"',
    "win-64": 'sys_platform == "win32"',
}


class ManifestSpecError(ValueError):
    """A spec in pixi.toml that the pip path cannot translate faithfully."""


def load_manifest(path: Path = MANIFEST) -> dict:
    return pixi_manifest.load(path)


def conda_to_pep440(spec: str) -> str:
    """Translate the conda match specs this manifest uses (ranges, `X.Y.*`, `*`) to PEP 440."""
    spec = spec.strip()
    if spec in ("", "*"):
        return ""
    parts = []
    for part in spec.split(","):
        part = part.strip()
        if re.fullmatch(r"==\s*[0-9][0-9A-Za-z.]*\.\*", part):
            raise ManifestSpecError(
                f"conda spec {spec!r}: pixi reads '{part}' as exactly {part[2:-2].strip()} (its .0 release); "
                f"write '{part[2:].strip()}' for the whole series"
            )
        if re.fullmatch(r"[0-9][0-9A-Za-z.]*(\.\*)?", part):  # a bare version means "== version"
            part = "==" + part
        parts.append(part)
    return _checked(spec, ",".join(parts))


def pypi_to_pep440(spec: str) -> str:
    """pixi's pypi-dependencies specs are PEP 440 already; `*` means any version."""
    spec = spec.strip()
    return "" if spec in ("", "*") else _checked(spec, spec)


def _checked(original: str, pep440: str) -> str:
    try:
        SpecifierSet(pep440)
    except InvalidSpecifier as error:
        raise ManifestSpecError(f"pixi.toml spec {original!r} has no PEP 440 equivalent: {error}") from error
    return pep440


def _join(specs: list[str]) -> str:
    return ",".join(sorted({s for s in specs if s}))


def platform_requirements(manifest: dict, env: str, platform: Platform) -> dict[str, str]:
    """PyPI name (with extras) -> PEP 440 range for every index package of `env` on `platform`."""
    requirements: dict[str, list[str]] = {}
    for name, specs in pixi_manifest.conda_specs(manifest, env, platform).items():
        pypi_name = CONDA_TO_PYPI.get(name, name)
        if pypi_name is not None:
            requirements.setdefault(canonicalize_name(pypi_name), []).extend(conda_to_pep440(s.version) for s in specs)
    for name, specs in pixi_manifest.pypi_specs(manifest, env, platform).items():
        extras = sorted({extra for spec in specs for extra in spec.extras})
        key = canonicalize_name(name) + (f"[{','.join(extras)}]" if extras else "")
        requirements.setdefault(key, []).extend(pypi_to_pep440(s.version) for s in specs)
    return {name: _join(specs) for name, specs in sorted(requirements.items())}


def conda_only(manifest: dict, env: str, platform: Platform) -> dict[str, str]:
    """The conda packages of `env` on `platform` that have no PyPI counterpart (python, cuda-version)."""
    specs = pixi_manifest.conda_specs(manifest, env, platform)
    return {
        name: ",".join(s.version for s in specs_)
        for name, specs_ in sorted(specs.items())
        if name in CONDA_TO_PYPI and CONDA_TO_PYPI[name] is None
    }


def environment_requirements(manifest: dict, env: str, platform: str = PIP_PLATFORM) -> dict[str, str]:
    """PyPI name -> PEP 440 range for every package of `env` on one platform (the project itself excluded)."""
    return {
        name.split("[")[0]: spec
        for name, spec in platform_requirements(manifest, env, pixi_manifest.platforms(manifest)[platform]).items()
    }


def requirement_lines(manifest: dict, env: str) -> list[str]:
    """One line per package, with a marker where the environment's platforms disagree."""
    by_subdir: dict[str, dict[str, str]] = {}
    for platform in pixi_manifest.environment_platforms(manifest, env):
        if platform.subdir not in SUBDIR_MARKERS:
            raise ManifestSpecError(f"platform {platform.name}: no pip marker for subdir {platform.subdir}")
        view = platform_requirements(manifest, env, platform)
        if platform.subdir in by_subdir and by_subdir[platform.subdir] != view:
            # pip cannot tell linux-64-cuda from linux-64-cpu: both are "Linux x86_64" to it.
            differing = sorted(set(view.items()) ^ set(by_subdir[platform.subdir].items()))
            raise ManifestSpecError(
                f"environment {env}: the {platform.subdir} platforms ask for different PyPI packages "
                f"{differing}; pip cannot tell them apart, so keep their ranges equal in pixi.toml"
            )
        by_subdir[platform.subdir] = view
    lines = []
    names = sorted({name for view in by_subdir.values() for name in view})
    for name in names:
        groups: dict[str, list[str]] = {}
        for subdir, view in by_subdir.items():
            if name in view:
                groups.setdefault(view[name], []).append(subdir)
        for spec, subdirs in groups.items():
            if len(subdirs) == len(by_subdir):
                lines.append(f"{name}{spec}")
            else:
                marker = " or ".join(f"({SUBDIR_MARKERS[s]})" for s in subdirs)
                lines.append(f"{name}{spec}; {marker}")
    return lines


def render_requirements(manifest: dict, env: str) -> str:
    platforms = pixi_manifest.environment_platforms(manifest, env)
    lines = [
        "# Generated from pixi.toml by `python tools/pixi_pip.py write`: do not edit by hand.",
        f"# The pip path for the pixi environment {env!r} on its platforms "
        f"({', '.join(p.name for p in platforms)}); pins.txt fixes the versions.",
    ]
    if "torch" in environment_requirements(manifest, env):
        lines += [
            "# torch: on Linux x86_64 pip takes PyPI's default torch wheel, a CUDA build that also installs",
            "# several GB of nvidia-* wheels (not pinned in pins.txt). For the CPU build add PyTorch's CPU index:",
            f"#   pip install -r requirements/{env}.txt --extra-index-url {CPU_INDEX}",
            "# For one specific CUDA build use the index that https://pytorch.org/get-started/locally/ gives.",
        ]
    for platform in platforms:
        extra = "; ".join(f"{n} {s}" for n, s in conda_only(manifest, env, platform).items())
        if extra:
            lines.append(f"# pixi also installs on {platform.name}: {extra}")
    lines.append("-c pins.txt")
    return "\n".join(lines + requirement_lines(manifest, env)) + "\n"


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


def _conda_file_version(url: str) -> str:
    """The version in a conda package file name: <name>-<version>-<build>.conda (or .tar.bz2)."""
    filename = url.rsplit("/", 1)[-1].removesuffix(".conda").removesuffix(".tar.bz2")
    return filename.rsplit("-", 2)[1]


def _lock_rows(lock: dict, env: str, platform: Platform) -> list[dict]:
    rows = lock["environments"][env]["packages"]
    if platform.name in rows:
        return rows[platform.name]
    raise ManifestSpecError(
        f"pixi.lock has no rows named {platform.name} for environment {env} (it has {sorted(rows)}); "
        "pin from an environment installed with `pixi install --locked` instead: python tools/pixi_pip.py pin --venv"
    )


def lock_pins(lock: dict, env: str, platform: Platform) -> dict[str, str]:
    """PyPI name -> version of every package pixi.lock installs for `env` on `platform`.

    Conda packages count under the PyPI name of their purl (pixi's conda-PyPI mapping, written into
    the lock); PyPI packages under their own name. The editable project itself is left out.
    """
    packages = {entry.get("conda") or entry.get("pypi"): entry for entry in lock.get("packages", [])}
    pins = {}
    for row in _lock_rows(lock, env, platform):
        url = row.get("conda") or row.get("pypi")
        entry = packages.get(url, {})
        if "conda" in row:
            version = str(entry.get("version") or _conda_file_version(url))
            for purl in entry.get("purls", []):
                if purl.startswith("pkg:pypi/"):
                    pins[canonicalize_name(purl.removeprefix("pkg:pypi/").split("@")[0].split("?")[0])] = version
        elif "name" in entry and not str(url).startswith((".", "file:")):
            pins[canonicalize_name(entry["name"])] = str(entry["version"])
    return pins


def pins_from_lock(manifest: dict, lock: dict) -> dict[str, str]:
    platform = pixi_manifest.platforms(manifest)[PIP_PLATFORM]
    pins: dict[str, str] = {}
    for env in manifest["environments"]:
        for name, version in lock_pins(lock, env, platform).items():
            if pins.setdefault(name, version) != version:
                raise ManifestSpecError(f"pixi.lock has {name} {pins[name]} and {version} on {PIP_PLATFORM}")
    return dict(sorted(pins.items()))


def pin(manifest: dict, from_venv: bool = False) -> None:
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    if LOCK.exists() and not from_venv:
        import yaml

        pins = pins_from_lock(manifest, yaml.safe_load(LOCK.read_text()))
        source = f"from pixi.lock's {PIP_PLATFORM} rows (every environment)"
    else:
        names = sorted({name for env in manifest["environments"] for name in environment_requirements(manifest, env)})
        pins = installed_closure(names)
        source = f"from the packages installed for every environment (Python {python}, linux CPU)"
    header = (
        f"# Generated by `python tools/pixi_pip.py pin` {source}.\n"
        "# Regenerate after `pixi update` (or, without a pixi.lock, after `pip install -U -r requirements/default.txt`).\n"
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
        try:
            expected = render_requirements(manifest, env)
        except ManifestSpecError as error:
            problems.append(str(error))
            continue
        if not path.exists() or path.read_text() != expected:
            problems.append(
                f"{path.relative_to(ROOT)} is out of date with pixi.toml: run python tools/pixi_pip.py write"
            )
    stale = {p.stem for p in REQUIREMENTS.glob("*.txt")} - set(manifest["environments"]) - {"pins"}
    problems += [f"requirements/{name}.txt has no pixi environment: delete it" for name in sorted(stale)]
    pins = read_pins()
    for env in manifest["environments"]:
        try:
            requirements = environment_requirements(manifest, env)
        except ManifestSpecError:
            continue  # reported above
        for name, spec in requirements.items():
            if name not in pins:
                problems.append(f"{name} (environment {env}) has no pin: run python tools/pixi_pip.py pin")
            elif pins[name] not in SpecifierSet(spec):
                problems.append(f"{name}=={pins[name]} is outside pixi.toml's range {spec!r} (environment {env})")
    return problems


def main(argv: list[str]) -> int:
    manifest = load_manifest()
    command = argv[1] if len(argv) > 1 else "check"
    try:
        if command == "write":
            write(manifest)
        elif command == "pin":
            pin(manifest, from_venv="--venv" in argv)
        elif command == "check":
            problems = check(manifest)
            print("\n".join(problems) or "requirements/ agrees with pixi.toml")
            return 1 if problems else 0
        else:
            print(__doc__)
            return 2
    except ManifestSpecError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
