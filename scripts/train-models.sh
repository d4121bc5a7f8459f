#!/usr/bin/env bash
# Re-makes the models shipped in models/ (and compiled into the binary) with diffuse itself:
# for Fashion-MNIST and for MNIST, the classifier that judges generated images and the
# prompt-conditioned UNet; and colour-fashion, the latent text-to-image model (a VAE, then a
# cross-attention UNet on its latents). On 2 cores: about 6 minutes for each classifier, 45
# minutes for the Fashion-MNIST UNet (88 before the training kernels; less for MNIST's shorter
# run), about 35 minutes for colour-fashion's VAE and 40 for its UNet. The results go to
# target/models/; copy model.safetensors and config.json over models/NAME/ to ship them (for
# colour-fashion, the files of the diffusers folder that crates/pipeline/src/shipped.rs lists).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/system-packages.sh
scripts/text-encoder.sh
scripts/mnist.sh
cargo build --release --locked -p diffuse-cli
d=target/release/diffuse
$d classifier --data fashion-mnist --steps 3000 --batch 128 --seed 0 \
  --out target/models/fashion-mnist-classifier
$d train --data fashion-mnist --model unet --channels 16 --cond prompt \
  --steps 9000 --batch 64 --lr 1e-3 --clip 1 --ema 0.999 --save-every 500 --seed 0 \
  --out target/models/fashion-mnist
$d classifier --data mnist --steps 3000 --batch 128 --seed 0 \
  --out target/models/mnist-classifier
$d train --data mnist --model unet --channels 16 --cond prompt \
  --steps 6000 --batch 64 --lr 1e-3 --clip 1 --ema 0.999 --save-every 500 --seed 0 \
  --out target/models/mnist
$d train --model vae --data colour-fashion --channels 16 --steps 2000 --batch 64 --lr 5e-4 \
  --seed 0 --out target/models/colour-fashion-vae
$d train --model latent --vae target/models/colour-fashion-vae --data colour-fashion \
  --steps 4000 --batch 64 --lr 5e-4 --ema 0.999 --save-every 500 --seed 0 \
  --out target/models/colour-fashion
