#!/usr/bin/env bash
# Sample quality of seed 003's model trained by diffuse and by PyTorch with the same data, model,
# budget (STEPS steps of BATCH) and sample size (2,000, DDPM 1000 steps): both sample sets are
# scored by `diffuse eval` against the same five pairs of held-out draws (excess energy
# distance), for SEEDS training seeds each. Installs PyTorch into bench/.venv (never run by CI);
# PYTHON=... uses another interpreter with torch.
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${STEPS:-40000} BATCH=${BATCH:-25} SEEDS=${SEEDS:-3}
PY=${PYTHON:-bench/.venv/bin/python}
if [ ! -x "$PY" ]; then
  python3 -m venv bench/.venv
  bench/.venv/bin/pip install --quiet torch
  PY=bench/.venv/bin/python
fi
cargo build --release --locked -p diffuse-cli
B=target/release/diffuse
W=target/quality
mkdir -p $W
echo "data,seed,diffuse_excess,torch_excess,floor"
for data in spiral swissroll; do
  for seed in $(seq 1 "$SEEDS"); do
    $B train --data $data --steps "$STEPS" --batch "$BATCH" --seed "$seed" --out $W/d-$data-$seed >/dev/null 2>&1
    $B sample --model $W/d-$data-$seed --n 2000 --sampler ddpm --variance beta --seed "$seed" --out $W/ds-$data-$seed >/dev/null 2>&1
    "$PY" bench/torch_quality.py $data "$STEPS" "$BATCH" "$seed" $W/t-$data-$seed.csv
    for who in d t; do
      f=$W/ds-$data-$seed/samples.csv; [ $who = t ] && f=$W/t-$data-$seed.csv
      $B eval --data $data --samples "$f" --seed 0 --out $W/e$who-$data-$seed >/dev/null 2>&1
    done
    python3 - "$data" "$seed" $W/ed-$data-$seed/summary.json $W/et-$data-$seed/summary.json <<'PY'
import json, sys
d, t = (json.load(open(p)) for p in sys.argv[3:5])
print(f"{sys.argv[1]},{sys.argv[2]},{d['excess_energy_distance']:.5f},{t['excess_energy_distance']:.5f},{d['energy_distance_floor']:.5f}")
PY
  done
done
