#!/usr/bin/env bash
# Re-trains the shipped Fashion-MNIST UNet with the recipe of scripts/train-models.sh (9000 steps
# of 64, seed 0; OUT/fashion-mnist, its time in OUT/train.log) and judges it and the shipped
# model the same way: 100 images of each class (20-NFE DPM-Solver++(2M), guidance 3) for each
# sampling seed in SEEDS, scored by the shipped classifier (class accuracy, Frechet distance to
# the test images and its floor). The spread over sampling seeds is the yardstick for "the same
# quality". SKIP_TRAIN=1 judges an earlier OUT/fashion-mnist again. Not run by CI (about 45
# minutes of training on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-target/retrain} SEEDS=${SEEDS:-"1 2 3"}
cargo build --release --locked -p diffuse-cli
d=target/release/diffuse
mkdir -p "$OUT"
if [ "${SKIP_TRAIN:-0}" != 1 ]; then
  { time $d train --data fashion-mnist --model unet --channels 16 --cond prompt \
      --steps 9000 --batch 64 --lr 1e-3 --clip 1 --ema 0.999 --save-every 500 --seed 0 \
      --out "$OUT/fashion-mnist" --force </dev/null; } 2>"$OUT/train.log"
fi
echo "model,seed,accuracy,frechet_distance,frechet_floor"
for model in fashion-mnist "$OUT/fashion-mnist"; do
  name=shipped; [ "$model" = fashion-mnist ] || name=retrained
  for seed in $SEEDS; do
    $d sample --model "$model" --label all --n 100 --sampler dpmpp-2m --nfe 20 --guidance 3 \
      --seed "$seed" --out "$OUT/s-$name-$seed" --force </dev/null >/dev/null 2>&1
    $d eval --samples "$OUT/s-$name-$seed" --classifier fashion-mnist-classifier \
      --out "$OUT/e-$name-$seed" --force </dev/null >/dev/null 2>&1
    python3 - "$name" "$seed" "$OUT/e-$name-$seed/summary.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[3]))
print(f"{sys.argv[1]},{sys.argv[2]},{s['accuracy']:.4f},{s['frechet_distance']:.2f},{s['frechet_floor']:.2f}")
PY
  done
done
