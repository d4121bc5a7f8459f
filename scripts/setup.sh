#!/usr/bin/env bash
# The README's set-up command: the system packages, then the release build.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/system-packages.sh
scripts/text-encoder.sh
cargo build --release --locked
