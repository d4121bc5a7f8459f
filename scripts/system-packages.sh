#!/usr/bin/env bash
# Installs the Debian packages diffuse reads data from: Fashion-MNIST, as IDX files under
# /usr/share/datasets/fashion-mnist. Used by scripts/setup.sh and by CI.
set -euo pipefail
if [ ! -d /usr/share/datasets/fashion-mnist ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get install -y --no-install-recommends dataset-fashion-mnist \
    || { $SUDO apt-get update && $SUDO apt-get install -y --no-install-recommends dataset-fashion-mnist; }
fi
