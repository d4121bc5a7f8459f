#!/usr/bin/env bash
# Stable Diffusion in diffuse against diffusers on PyTorch, on this machine, side by side: one
# guided UNet step (batch 2) at 64x64 latents, one VAE decode at 512x512, and the peak memory of
# a 2-step 512x512 generation. Needs a diffusers folder of SD 1.x: real weights, or the full-size
# architecture with random weights that `scripts/sd-fixtures.py --full DIR` builds (DIR/sd1-full).
# Installs PyTorch and diffusers from PyPI into bench/.venv (never run by CI), unless $PYTHON
# names an interpreter that has them.
# Usage: bench/sd.sh FOLDER [REPEATS]
set -euo pipefail
cd "$(dirname "$0")/.."
folder=${1:?usage: bench/sd.sh FOLDER [REPEATS]}
repeats=${2:-3}
py=${PYTHON:-bench/.venv/bin/python}
if [ -z "${PYTHON:-}" ] && [ ! -x bench/.venv/bin/python ]; then
  python3 -m venv bench/.venv
fi
"$py" -c "import torch, diffusers, transformers" 2>/dev/null ||
  "$py" -m pip install --quiet torch diffusers transformers
cargo build --release --locked -p diffuse-cli
threads=$(nproc)
diffuse_json=$(target/release/diffuse bench --sd "$folder" --sd-latent 64 --repeats "$repeats" --out target/bench-sd --force 2>/dev/null)
# diffuse's peak memory: a 2-step 512x512 generation in a child process.
diffuse_gen=$(python3 - "$folder" <<'PY'
import json, resource, subprocess, sys, time
t0 = time.perf_counter()
subprocess.run(["target/release/diffuse", "sample", "--model", sys.argv[1], "--prompt", "a photo of a cat",
                "--nfe", "2", "--height", "512", "--width", "512", "--out", "target/bench-sd/sample",
                "--force"],
               check=True, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
print(json.dumps({"generation_seconds": time.perf_counter() - t0,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
PY
)
torch_json=$("$py" bench/torch_sd.py "$folder" "$threads" 64 "$repeats" 2>/dev/null)
python3 - "$diffuse_json" "$diffuse_gen" "$torch_json" <<'PY'
import json, os, sys
d, g, t = (json.loads(a) for a in sys.argv[1:4])
print(f"PyTorch {t['torch']}, {os.cpu_count()} cores; ratio = diffuse / PyTorch speed (> 1: diffuse is faster)")
print(f"guided UNet step, 64x64 latents, batch 2: diffuse {d['unet_step_seconds']:.2f} s, PyTorch {t['unet_step_seconds']:.2f} s, ratio {t['unet_step_seconds'] / d['unet_step_seconds']:.2f}")
print(f"VAE decode, 512x512: diffuse {d['vae_decode_seconds']:.2f} s, PyTorch {t['vae_decode_seconds']:.2f} s, ratio {t['vae_decode_seconds'] / d['vae_decode_seconds']:.2f}")
print(f"2-step 512x512 generation: diffuse {g['generation_seconds']:.1f} s, peak {g['peak_rss_mb']:.0f} MB; PyTorch {t['generation_seconds']:.1f} s, peak {t['peak_rss_mb']:.0f} MB")
PY
