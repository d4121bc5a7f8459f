#!/usr/bin/env bash
# The README's set-up command: the system packages, the text encoder and MNIST, then the release
# build.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/system-packages.sh
scripts/text-encoder.sh
scripts/mnist.sh
cargo build --release --locked
