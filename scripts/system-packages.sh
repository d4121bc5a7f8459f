#!/usr/bin/env bash
# Installs the Debian packages diffuse uses: Fashion-MNIST, as IDX files under
# /usr/share/datasets/fashion-mnist, and, for the tests of `diffuse serve`'s page in a real
# browser, Chromium with ChromeDriver (/usr/bin/chromium, /usr/bin/chromedriver); for the tests
# of the wgpu backend without a GPU, lavapipe (Mesa's Vulkan driver on the CPU) and the Vulkan
# loader. Used by scripts/setup.sh and by CI.
set -euo pipefail
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
wanted=()
[ -d /usr/share/datasets/fashion-mnist ] || wanted+=(dataset-fashion-mnist)
[ -x /usr/bin/chromium ] || wanted+=(chromium)
[ -x /usr/bin/chromedriver ] || wanted+=(chromium-driver)
for p in mesa-vulkan-drivers libvulkan1; do
  dpkg -s "$p" > /dev/null 2>&1 || wanted+=("$p")
done
if [ ${#wanted[@]} -gt 0 ]; then
  $SUDO apt-get install -y --no-install-recommends "${wanted[@]}" \
    || { $SUDO apt-get update && $SUDO apt-get install -y --no-install-recommends "${wanted[@]}"; }
fi
