#!/usr/bin/env bash
# The Python package's test suite: builds `import diffuse` into a fresh venv (target/python-venv)
# and runs crates/python/tests (with matplotlib for examples/seeds.py, and tqdm), which also compare with the `diffuse` command built by
# `cargo test` (target/debug/diffuse). Used by CI after the README's test command.
#
# The package is built with cargo's dev profile here, which reuses what `cargo test` compiled
# (dependencies at opt-level 3) and takes about a minute; `pip install ./crates/python` as the
# README has it builds the release profile (about 7 minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=target/python-venv
rm -rf "$VENV"
python3 -m venv "$VENV"
MATURIN_PEP517_ARGS="--profile dev --locked" "$VENV/bin/pip" install --quiet ./crates/python pytest matplotlib tqdm
DIFFUSE_BIN="$PWD/target/debug/diffuse" "$VENV/bin/python" -m pytest crates/python/tests -q
