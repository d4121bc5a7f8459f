#!/usr/bin/env bash
# Times seed 003's model in diffuse and in PyTorch on this machine and prints the ratios.
# Installs PyTorch from PyPI into bench/.venv (never run by CI).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x bench/.venv/bin/python ]; then
  python3 -m venv bench/.venv
  bench/.venv/bin/pip install --quiet torch
fi
cargo build --release --locked -p diffuse-cli
threads=$(nproc)
diffuse_json=$(target/release/diffuse bench --out target/bench --force 2>/dev/null)
torch_json=$(bench/.venv/bin/python bench/torch_bench.py "$threads")
unet_json=$(bench/.venv/bin/python bench/torch_unet.py "$threads" 16)
python3 - "$diffuse_json" "$torch_json" "$unet_json" <<'PY'
import json, sys
d, t, u = json.loads(sys.argv[1]), json.loads(sys.argv[2]), json.loads(sys.argv[3])
print(f"PyTorch {t['torch']}, {__import__('os').cpu_count()} cores; ratio = diffuse / PyTorch speed (> 1: diffuse is faster)")
for b, r in d["train_steps_per_second"].items():
    print(f"train, batch {b:>4}: diffuse {r:7.0f} steps/s, PyTorch {t['train_steps_per_second'][b]:7.0f} steps/s, ratio {r / t['train_steps_per_second'][b]:.2f}")
print(f"sample 10,000 points x 1000 DDPM steps: diffuse {d['sample_seconds']:.1f} s, PyTorch {t['sample_seconds']:.1f} s, ratio {t['sample_seconds'] / d['sample_seconds']:.2f}")
print(f"UNet ({d['unet_channels']} channels, 28x28, prompt-conditioned): train, batch 64: diffuse {d['unet_train_steps_per_second']:.2f} steps/s, PyTorch {u['unet_train_steps_per_second']:.2f} steps/s, ratio {d['unet_train_steps_per_second'] / u['unet_train_steps_per_second']:.2f}")
print(f"sample 100 images, 20 steps at guidance 3 (40 forwards): diffuse {d['unet_sample_100_seconds']:.1f} s, PyTorch {u['unet_sample_100_seconds']:.1f} s, ratio {u['unet_sample_100_seconds'] / d['unet_sample_100_seconds']:.2f}")
PY
