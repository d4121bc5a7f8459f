#!/usr/bin/env bash
# Screenshots of the tour page's figures for the README (headless Chromium, installed by
# scripts/system-packages.sh): scripts/tour-screenshots.sh [TOUR_DIR] [OUT_DIR]
# (defaults: tour, docs). Each shot is the page scrolled to one section, 1280 pixels wide;
# "top" is the page's first screen (its reading guide). SECTIONS="a b" picks others.
set -euo pipefail
cd "$(dirname "$0")/.."
tour=$(realpath "${1:-tour}")
out=${2:-docs}
[ -f "$tour/index.html" ] || { echo "tour-screenshots: $tour/index.html not found (run diffuse tour first)" >&2; exit 1; }
browser=$(command -v chromium || command -v chromium-browser || true)
[ -n "$browser" ] || { echo "tour-screenshots: chromium not found (scripts/system-packages.sh installs it)" >&2; exit 1; }
mkdir -p "$out"
# Headless Chromium does not scroll to an anchor before its shot, so each section is cut out
# of the page into a page of its own (same style, same relative image paths) beside it.
for section in ${SECTIONS:-top undiffuse-one-point fokker-planck ode-8gaussians converge-8gaussians seed004-train seed004-sample}; do
  page="$tour/index.html"
  if [ "$section" != top ]; then
    page="$tour/.shot-$section.html"
    python3 - "$tour/index.html" "$section" "$page" <<'PY'
import re, sys
html = open(sys.argv[1], encoding="utf-8").read()
head = html[: html.index("<body>") + len("<body>")]
m = re.search(r'<section id="%s">.*?</section>' % re.escape(sys.argv[2]), html, re.S)
if not m:
    sys.exit("tour-screenshots: no section '%s' in %s" % (sys.argv[2], sys.argv[1]))
open(sys.argv[3], "w", encoding="utf-8").write(head + m.group(0) + "</body></html>")
PY
  fi
  "$browser" --headless=new --no-sandbox --disable-gpu --hide-scrollbars \
    --window-size=1280,1400 --virtual-time-budget=10000 \
    --screenshot="$out/tour-$section.png" "file://$page" 2>/dev/null
  [ "$page" = "$tour/index.html" ] || rm -f "$page"
  echo "wrote $out/tour-$section.png"
done
