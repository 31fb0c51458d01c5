"""What pixi.toml asks pixi to install, per environment and platform, read the way pixi reads it.

pixi's rules that matter here (pixi docs: workspace/multi_platform_configuration.md, "Target
specifier" and "Wildcard platform selectors"):

- A platform is a bare conda subdir (`"osx-arm64"`) or a named entry (`{ name = "linux-64-cuda",
  platform = "linux-64", cuda = "12.0" }`).
- A target table applies to a platform when its selector is the platform's name, its subdir (so
  `target.linux-64` matches both linux-64-cuda and linux-64-cpu), a family (`unix`, `linux`, `osx`,
  `win`) or a `*` wildcard matching the name.
- Within one feature a target's spec for a package *replaces* the feature's base spec (it does
  not narrow it); when several targets match, the one defined later in the manifest wins.
- Across the features of an environment the specs for one package all apply (the solver must meet
  each), and an environment exists only on the platforms every one of its features allows.
"""

from __future__ import annotations

import fnmatch
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ROOT / "pixi.toml"
FAMILIES = {"unix": ("linux-", "osx-"), "linux": ("linux-",), "osx": ("osx-",), "win": ("win-",)}


@dataclass(frozen=True)
class Platform:
    name: str
    subdir: str
    cuda: str | None  # the declared __cuda driver version, None on CPU platforms


@dataclass(frozen=True)
class CondaSpec:
    version: str  # conda match spec version as written in pixi.toml; "*" for any version
    build: str = ""  # build string glob ("cpu*"), "" for any build


@dataclass(frozen=True)
class PypiSpec:
    version: str  # PEP 440 as written in pixi.toml; "" for any version
    extras: tuple[str, ...] = ()


def load(path: Path = MANIFEST) -> dict:
    with open(path, "rb") as f:
        return tomllib.load(f)


def loads(text: str) -> dict:
    return tomllib.loads(text)


def platforms(manifest: dict) -> dict[str, Platform]:
    result = {}
    for entry in manifest["workspace"]["platforms"]:
        if isinstance(entry, str):
            result[entry] = Platform(entry, entry, None)
        else:
            cuda = entry.get("cuda")
            if isinstance(cuda, dict):
                cuda = cuda.get("driver")
            name = entry.get("name", entry["platform"])
            result[name] = Platform(name, entry["platform"], cuda)
    return result


def selector_matches(selector: str, platform: Platform) -> bool:
    if selector in (platform.name, platform.subdir):
        return True
    if selector in FAMILIES:
        return platform.subdir.startswith(FAMILIES[selector])
    return "*" in selector and fnmatch.fnmatchcase(platform.name, selector)


def environment_features(manifest: dict, env: str) -> list[dict]:
    """The feature tables of `env`: the default feature (the manifest's top level) first, unless excluded."""
    definition = manifest["environments"][env]
    if isinstance(definition, list):
        definition = {"features": definition}
    tables = [] if definition.get("no-default-feature") else [manifest]
    return tables + [manifest.get("feature", {})[name] for name in definition.get("features", [])]


def environment_platforms(manifest: dict, env: str) -> list[Platform]:
    """The workspace platforms `env` is solved for: those that every one of its features allows."""
    allowed = list(platforms(manifest).values())
    for table in environment_features(manifest, env):
        if table is not manifest and "platforms" in table:
            allowed = [p for p in allowed if p.name in table["platforms"] or p.subdir in table["platforms"]]
    return allowed


def _feature_view(table: dict, platform: Platform, key: str) -> dict:
    """One feature's `key` table (dependencies or pypi-dependencies) on `platform`: targets replace."""
    view = dict(table.get(key, {}))
    for selector, target in table.get("target", {}).items():
        if selector_matches(selector, platform):
            view.update(target.get(key, {}))  # a later matching target wins, package by package
    return view


def _pypi_spec(spec) -> PypiSpec | None:
    """A pypi-dependencies value as a PEP 440 spec; None for path/git/url sources (not from an index)."""
    if isinstance(spec, dict):
        if any(source in spec for source in ("path", "git", "url")):
            return None
        version, extras = spec.get("version", "*"), tuple(sorted(spec.get("extras", ())))
    else:
        version, extras = spec, ()
    version = version.strip()
    return PypiSpec("" if version in ("", "*") else version, extras)


def conda_specs(manifest: dict, env: str, platform: Platform) -> dict[str, list[CondaSpec]]:
    """Conda package name -> every spec the features of `env` place on it on `platform`."""
    specs: dict[str, list[CondaSpec]] = {}
    for table in environment_features(manifest, env):
        for name, spec in _feature_view(table, platform, "dependencies").items():
            if isinstance(spec, dict):
                parsed = CondaSpec(spec.get("version", "*").strip(), spec.get("build", "").strip())
            else:
                parsed = CondaSpec(spec.strip())
            specs.setdefault(name, []).append(parsed)
    return specs


def pypi_specs(manifest: dict, env: str, platform: Platform) -> dict[str, list[PypiSpec]]:
    """PyPI package name -> every spec the features of `env` place on it on `platform` (index packages only)."""
    specs: dict[str, list[PypiSpec]] = {}
    for table in environment_features(manifest, env):
        for name, spec in _feature_view(table, platform, "pypi-dependencies").items():
            parsed = _pypi_spec(spec)
            if parsed is not None:
                specs.setdefault(name, []).append(parsed)
    return specs
