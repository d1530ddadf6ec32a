#!/usr/bin/env bash
# Takes assets/screenshot.png: the demo window under Xvfb, Start pressed,
# jobs moving. Needs Debian's Xvfb, xdotool and ImageMagick (installed here
# if missing, as root).
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(xvfb xauth libgl1-mesa-dri libegl1 libgl1 libxkbcommon-x11-0 libxcursor1 libxrandr2 libxi6
          xdotool imagemagick)
if ! command -v Xvfb >/dev/null || ! command -v xdotool >/dev/null || ! command -v import >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}"
fi

cargo build --release --quiet
work=$(mktemp -d)
trap 'kill "${app:-}" "${xvfb:-}" 2>/dev/null || true; rm -rf "$work"' EXIT

# The reference data, three times the iterations and a slave at half speed:
# long enough to watch, and the slower slave gives jobs to the master.
cat > "$work/config.json" <<'JSON'
{
  "master": { "address": "127.0.0.1:17101" },
  "slave": { "address": "127.0.0.1:17102", "throttle": 0.5 },
  "workload": { "iterations": 3000 }
}
JSON

display=:${SCREENSHOT_DISPLAY:-93}
Xvfb "$display" -screen 0 1280x800x24 >/dev/null 2>&1 &
xvfb=$!
sleep 1
export DISPLAY=$display
(cd "$work" && exec "$OLDPWD/target/release/loadbal" demo --config config.json) >"$work/demo.log" 2>&1 &
app=$!
for _ in $(seq 50); do
    xdotool search --name 'loadbal demo' >/dev/null 2>&1 && break
    sleep 0.2
done
sleep 1
# The Start button sits in the header, right of the title.
xdotool mousemove 147 16 click 1
sleep "${SCREENSHOT_AFTER:-5}"
import -window root assets/screenshot.png
echo "wrote assets/screenshot.png"
