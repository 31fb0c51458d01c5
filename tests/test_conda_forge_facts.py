"""Every environment x platform x pin of pixi.toml meets what conda-forge really builds.

No solver is reachable where the tests run, so tools/conda_forge_facts.toml records what the feedstocks
build (versions, platforms, CUDA variants, Python versions, each with branch and commit) and this test
solves pixi.toml's restricted packages against it. The lockfile workflow's `pixi lock` confirms it.
"""

import re
import tomllib

import pytest
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from tools import pixi_manifest
from tools.pixi_pip import conda_to_pep440

FACTS_FILE = pixi_manifest.ROOT / "tools/conda_forge_facts.toml"


@pytest.fixture(scope="module")
def facts():
    with open(FACTS_FILE, "rb") as f:
        return tomllib.load(f)


def providers(facts) -> dict[str, dict]:
    return {name: package for package in facts["package"] for name in package["provides"]}


def _matches(conda_spec: str, version: str) -> bool:
    return Version(version) in SpecifierSet(conda_to_pep440(conda_spec))


def cuda_run_range(facts, variant: str) -> str:
    major = int(variant.split(".")[0])
    return facts["cuda"]["run_requirement"].format(variant=variant, next_major=major + 1)


def variant_problems(facts, name, package, release, platform, specs, builds) -> list[str]:
    """Why `release` of `package` cannot be installed as `name` on `platform` ([] when it can)."""
    reasons = []
    python = [s.version for s in specs.get("python", [])]
    if "python" in release and not any(all(_matches(p, v) for p in python) for v in release["python"]):
        reasons.append(f"no build for python {','.join(python)} (built for {release['python']})")
    wants_cpu = name in package.get("cpu_only", []) or any(
        b.startswith(package.get("build_prefixes", {}).get("cpu", "\0")) for b in builds
    )
    wants_cuda = name in package.get("cuda_only", []) or any(
        b.startswith(package.get("build_prefixes", {}).get("cuda", "\0")) for b in builds
    )
    cuda_variants = release.get("cuda", {}).get(platform.subdir, [])
    cpu_ok = platform.subdir in release["cpu"] and not wants_cuda
    if not platform.cuda and cuda_variants and not wants_cpu:
        reasons.append(
            f"{platform.name} has no CUDA driver but conda-forge also builds CUDA variants {cuda_variants} for "
            f"{platform.subdir}: select the CPU build (a pytorch-cpu style package or build = 'cpu*')"
        )
    if wants_cuda or (platform.cuda and not cpu_ok):
        pins = [s.version for s in specs.get("cuda-version", [])]
        usable = []
        for variant in cuda_variants:
            run_range = cuda_run_range(facts, variant)
            if not platform.cuda:
                continue
            driver = facts["cuda"]["driver_requirement"].format(major=variant.split(".")[0])
            if not _matches(driver, platform.cuda):
                continue
            if all(_matches(pin, variant) for pin in pins) and _matches(run_range, variant):
                usable.append(variant)
        if not usable:
            reasons.append(
                f"no CUDA build meets cuda-version {','.join(pins) or '(unpinned)'} with driver {platform.cuda}: "
                f"{platform.subdir} CUDA variants are {cuda_variants or 'none'}, each requiring cuda-version "
                f"{' or '.join(cuda_run_range(facts, v) for v in cuda_variants) or '-'}"
            )
    elif not cpu_ok:
        reasons.append(f"not built for {platform.subdir} (CPU builds: {release['cpu']})")
    return reasons


def solve_problems(manifest: dict, facts: dict) -> list[str]:
    """Every environment x platform x restricted package of `manifest` that conda-forge cannot satisfy."""
    by_name = providers(facts)
    problems = []
    for env in manifest["environments"]:
        for platform in pixi_manifest.environment_platforms(manifest, env):
            specs = pixi_manifest.conda_specs(manifest, env, platform)
            for name, package_specs in specs.items():
                for package in facts["package"]:
                    if name in package.get("not_used", {}):
                        problems.append(f"{env}/{platform.name}: {name}: {package['not_used'][name]}")
                package = by_name.get(name)
                if package is None:
                    continue
                versions = [s.version for s in package_specs]
                builds = [s.build for s in package_specs if s.build]
                releases = [r for r in package["release"] if all(_matches(v, r["version"]) for v in versions)]
                if not releases:
                    problems.append(
                        f"{env}/{platform.name}: {name} {','.join(versions)}: no release recorded in "
                        f"{FACTS_FILE.name} ({[r['version'] for r in package['release']]}); refresh the facts"
                    )
                    continue
                reasons = {
                    r["version"]: variant_problems(facts, name, package, r, platform, specs, builds) for r in releases
                }
                if all(reasons.values()):
                    detail = "; ".join(f"{v}: {', '.join(rs)}" for v, rs in reasons.items())
                    problems.append(f"{env}/{platform.name}: {name} {','.join(versions)} cannot be installed: {detail}")
    return problems


def test_every_environment_and_platform_meets_conda_forge(facts):
    assert solve_problems(pixi_manifest.load(), facts) == []


def test_the_old_cuda_12_6_pin_has_no_solution(facts, repo_root):
    text = (repo_root / "pixi.toml").read_text()
    old = re.sub(r'cuda-version = "[^"]*"', 'cuda-version = "12.6.*"', text)
    assert old != text
    problems = solve_problems(pixi_manifest.loads(old), facts)
    cuda = [p for p in problems if "linux-64-cuda: pytorch-gpu" in p and "cuda-version 12.6.*" in p]
    # every environment has torch: each one fails on the CUDA platform
    assert len(cuda) == len(pixi_manifest.load()["environments"]) - 1  # all but `lint`


def test_bitsandbytes_outside_linux_64_is_caught(facts, repo_root):
    manifest = pixi_manifest.load()
    manifest["feature"]["peft"]["dependencies"]["bitsandbytes"] = ">=0.46,<1"
    problems = solve_problems(manifest, facts)
    assert any("peft/linux-aarch64: bitsandbytes" in p and "not built for linux-aarch64" in p for p in problems)
    assert any("peft/osx-arm64: bitsandbytes" in p for p in problems)


def test_a_cpu_platform_must_not_take_a_cuda_build(facts):
    manifest = pixi_manifest.load()
    manifest["feature"]["peft"]["target"]["linux-64-cpu"]["dependencies"]["bitsandbytes"] = ">=0.46,<1"
    assert any(
        "peft/linux-64-cpu: bitsandbytes" in p and "select the CPU build" in p for p in solve_problems(manifest, facts)
    )


def test_python_and_version_ranges_are_checked(facts):
    manifest = pixi_manifest.load()
    manifest["dependencies"]["python"] = "3.14.*"
    manifest["target"]["linux-64-cpu"]["dependencies"]["pytorch-cpu"] = ">=2.8,<2.10"
    problems = solve_problems(manifest, facts)
    assert any("linux-64-cpu: pytorch-cpu" in p and "no build for python 3.14.*" in p for p in problems)
    manifest["target"]["linux-64-cpu"]["dependencies"]["pytorch-cpu"] = ">=2.99"
    assert any("no release recorded" in p for p in solve_problems(manifest, facts))


def test_qt_matplotlib_is_caught(facts):
    manifest = pixi_manifest.load()
    manifest["dependencies"]["matplotlib"] = manifest["dependencies"].pop("matplotlib-base")
    assert any("matplotlib: adds pyside6" in p for p in solve_problems(manifest, facts))


def test_every_fact_names_its_source(facts):
    for package in facts["package"]:
        assert package["feedstock"].startswith("conda-forge/") and package["feedstock"].endswith("-feedstock")
        for release in package["release"]:
            assert re.search(r"@[0-9a-f]{40}\b", release["source"]), f"{package['name']} {release['version']}"
    assert re.search(r"@[0-9a-f]{40}", facts["cuda"]["source"])
    for name, source in facts["noarch"].items():
        assert "noarch: python" in source and re.search(r"@[0-9a-f]{40}", source), name


def test_every_conda_dependency_has_a_fact(facts):
    """A conda dependency without facts would pass unchecked: each one has builds recorded or is noarch."""
    known = set(providers(facts)) | set(facts["noarch"]) | {"python", "cuda-version"}
    manifest = pixi_manifest.load()
    used = set()
    for env in manifest["environments"]:
        for platform in pixi_manifest.environment_platforms(manifest, env):
            used |= set(pixi_manifest.conda_specs(manifest, env, platform))
    assert used - known == set(), f"record these in {FACTS_FILE.name}"
    assert not set(facts["pypi_only"]) & used, "a PyPI-only package is listed as a conda dependency"


def test_cuda_platform_and_overrides_match_the_pin(facts, repo_root):
    """The platform's driver, every CONDA_OVERRIDE_CUDA in the repository and the cuda-version pin agree."""
    manifest = pixi_manifest.load()
    cuda_platforms = [p for p in pixi_manifest.platforms(manifest).values() if p.cuda]
    pin = manifest["target"]["linux-64-cuda"]["dependencies"]["cuda-version"]
    variant = pin.removesuffix(".*")
    for platform in cuda_platforms:
        assert _matches(facts["cuda"]["driver_requirement"].format(major=variant.split(".")[0]), platform.cuda)
    files = [
        "container/Dockerfile",
        "README.md",
        "container/README.md",
        "pixi.toml",
        *sorted(str(p.relative_to(repo_root)) for p in (repo_root / ".github/workflows").glob("*.yml")),
    ]
    found = 0
    for name in files:
        for value in re.findall(r"CONDA_OVERRIDE_CUDA[=:]\s*\"?([0-9]+(?:\.[0-9]+)*)", (repo_root / name).read_text()):
            found += 1
            assert value == variant, f"{name}: CONDA_OVERRIDE_CUDA={value}, but pixi.toml pins cuda-version {pin}"
    assert found >= 4


def test_facts_are_dated_and_say_how_to_refresh(facts):
    assert facts["checked"].year >= 2026
    text = FACTS_FILE.read_text()
    assert "Refreshing" in text and "lockfile" in text  # how the facts are refreshed and confirmed
