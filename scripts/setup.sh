#!/usr/bin/env bash
# The README's first command: the system packages, the text encoder and MNIST, then `diffuse`
# built and installed into cargo's bin folder (on the PATH wherever `cargo` is), then the main
# demonstration, the tour, written to ./tour (open tour/index.html). `--no-tour` stops after
# the install.
set -euo pipefail
cd "$(dirname "$0")/.."
tour=1
for a in "$@"; do
  case "$a" in
    --no-tour) tour=0 ;;
    *) echo "scripts/setup.sh: unknown argument $a (it takes --no-tour)" >&2; exit 2 ;;
  esac
done
scripts/system-packages.sh
scripts/text-encoder.sh
scripts/mnist.sh
# --path builds in this workspace's target/ (target/release/diffuse), then copies the binary.
cargo install --locked --path crates/cli
bin="${CARGO_INSTALL_ROOT:-${CARGO_HOME:-$HOME/.cargo}}/bin"
if ! command -v diffuse >/dev/null; then
  echo "diffuse is installed in $bin, which is not on this shell's PATH: add it (rustup's" \
    "installer does, in ~/.profile), or open a new shell" >&2
fi
if [ "$tour" = 1 ]; then
  "$bin/diffuse" tour --out tour
  echo "open tour/index.html in a browser"
fi
