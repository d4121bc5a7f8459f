#!/usr/bin/env bash
# The wgpu backend against the CPU without a GPU (issue 20): on lavapipe, Mesa's Vulkan driver on
# the CPU (Debian's mesa-vulkan-drivers, installed by scripts/system-packages.sh), which needs a
# private XDG_RUNTIME_DIR. crates/pipeline/tests/wgpu.rs trains and samples an MLP, a pixel UNet,
# a VAE and a latent text-to-image model on both devices, trains the classifier on both, undiffuses a mixture, and runs Stable
# Diffusion's tiny pipelines against diffusers' numbers. Its own profile (gpu-check: dependencies
# unoptimised): the models are tiny and the device's work runs in the driver, so the build is the
# cost, about 5 minutes here against 18 for the test profile's opt-level 3, which the wgpu feature
# would make rebuild burn. `.ci/run` calls it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/system-packages.sh
scripts/text-encoder.sh
runtime=$(mktemp -d)
trap 'rm -rf "$runtime"' EXIT
XDG_RUNTIME_DIR="$runtime" cargo test --locked --profile gpu-check -p diffuse-pipeline \
  --features wgpu --test wgpu "$@"
