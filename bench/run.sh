#!/usr/bin/env bash
# Times seed 003's model and the Fashion-MNIST UNet in diffuse and in PyTorch on this machine and
# prints the ratios. Runs ROUNDS rounds (default 3), each timing diffuse then PyTorch, and prints
# every round's ratio and their median: on a shared 2-core host one round's ratio moves by 30%.
# Installs PyTorch from PyPI into bench/.venv (never run by CI).
# Usage: bench/run.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
if ! [[ "$rounds" =~ ^[1-9][0-9]*$ ]]; then
  echo "bench/run.sh: ROUNDS must be a positive whole number, got '$rounds'" >&2
  exit 2
fi
if [ ! -x bench/.venv/bin/python ]; then
  python3 -m venv bench/.venv
  bench/.venv/bin/pip install --quiet torch
fi
cargo build --release --locked -p diffuse-cli
threads=$(nproc)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for r in $(seq "$rounds"); do
  echo "round $r of $rounds ..." >&2
  target/release/diffuse bench --out target/bench --force 2>/dev/null > "$out/diffuse-$r.json"
  bench/.venv/bin/python bench/torch_bench.py "$threads" > "$out/torch-$r.json"
  bench/.venv/bin/python bench/torch_unet.py "$threads" 16 > "$out/unet-$r.json"
done
python3 - "$out" "$rounds" <<'PY'
import json, os, statistics, sys
folder, rounds = sys.argv[1], int(sys.argv[2])
load = lambda kind, r: json.load(open(os.path.join(folder, f"{kind}-{r}.json")))
runs = [(load("diffuse", r), load("torch", r), load("unet", r)) for r in range(1, rounds + 1)]
d0, t0, _ = runs[0]
print(f"PyTorch {t0['torch']}, {os.cpu_count()} cores, {rounds} round(s); "
      "ratio = diffuse / PyTorch speed (> 1: diffuse is faster), median of the rounds' ratios")

def row(label, unit, diffuse, torch, faster_is_higher, fmt):
    """One line: medians of both sides' numbers, each round's ratio and their median."""
    ds, ts = [diffuse(d) for d, _, _ in runs], [torch(t, u) for _, t, u in runs]
    ratios = [d / t if faster_is_higher else t / d for d, t in zip(ds, ts)]
    each = " ".join(f"{x:.2f}" for x in ratios)
    print(f"{label}: diffuse {statistics.median(ds):{fmt}} {unit}, PyTorch "
          f"{statistics.median(ts):{fmt}} {unit}, ratio {statistics.median(ratios):.2f} (rounds: {each})")

for b in d0["train_steps_per_second"]:
    row(f"train, batch {b:>4}", "steps/s", lambda d: d["train_steps_per_second"][b],
        lambda t, u: t["train_steps_per_second"][b], True, "7.0f")
row("sample 10,000 points x 1000 DDPM steps", "s", lambda d: d["sample_seconds"],
    lambda t, u: t["sample_seconds"], False, ".1f")
row(f"UNet ({d0['unet_channels']} channels, 28x28, prompt-conditioned): train, batch 64", "steps/s",
    lambda d: d["unet_train_steps_per_second"], lambda t, u: u["unet_train_steps_per_second"], True, ".2f")
row("sample 100 images, 20 steps at guidance 3 (40 forwards)", "s",
    lambda d: d["unet_sample_100_seconds"], lambda t, u: u["unet_sample_100_seconds"], False, ".1f")
PY
