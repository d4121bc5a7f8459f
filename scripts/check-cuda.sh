#!/usr/bin/env bash
# Type-checks the CUDA build (`--features cuda`) without a GPU or CUDA toolkit: cudarc loads
# libcuda at run time, so compiling needs neither. One thing needs the internet: cubecl-cuda's
# build dependency tracel-llvm-bundler downloads a prebuilt LLVM from GitHub (not a package
# registry, so not reachable from CI). Its build script skips that download when DOCS_RS is set,
# which is harmless for `cargo check` (nothing is linked); a real `cargo build --features cuda`
# on a machine with internet downloads it as usual. Own target folder: the feature set differs
# from the CPU build's, and sharing would rebuild burn twice.
set -euo pipefail
cd "$(dirname "$0")/.."
DOCS_RS=1 CARGO_TARGET_DIR=target/cuda cargo check --locked -p diffuse-cli --features cuda
