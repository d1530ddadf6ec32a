#!/usr/bin/env bash
# Takes the pictures of README.md and docs/ of the demo window under Xvfb, one per view:
#   assets/screenshot.png          the overview during a run
#   assets/screenshot-before.png   the window before Start
#   assets/screenshot-stream.png   the task stream after the run
#   assets/screenshot-jobs.png     the jobs table after the run
#   assets/screenshot-config.png   the configuration panel
#   assets/screenshot-compare.png  the Compare panel, every policy simulated
#   assets/screenshot-slave-stopped.png, -stream.png  a run whose slave was
#                                  stopped mid-run, the overview and the stream
# and the same at 1024 x 700 (assets/small-*.png): the overview after the
# run, with the configuration, with Compare, with both.
# First it runs the GUI test that checks egui's own layout for widgets that
# overlap or are cut off (at both sizes, every tab, each panel open or
# not) and stops if that fails. Uses the binary cargo builds
# (CARGO_TARGET_DIR honoured) and fails if a picture comes out blank. Needs
# Debian's Xvfb, xdotool and ImageMagick (installed here if missing, as root).
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(xvfb xauth libgl1-mesa-dri libegl1 libgl1 libxkbcommon-x11-0 libxcursor1 libxrandr2 libxi6
          xdotool imagemagick)
if ! command -v Xvfb >/dev/null || ! command -v xdotool >/dev/null || ! command -v import >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}"
fi

cargo test --locked --test gui the_layout_holds_at_both_sizes_with_every_panel

# The executable cargo built, wherever its target directory is.
bin=$(cargo build --release --message-format=json-render-diagnostics 2>/dev/null |
    python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "loadbal" \
            and "bin" in m["target"]["kind"] and m.get("executable"):
        print(m["executable"])')
if [ -z "$bin" ] || [ ! -x "$bin" ]; then
    echo "screenshot.sh: cargo built no loadbal binary" >&2
    exit 1
fi
work=$(mktemp -d)
trap 'kill "${app:-}" "${xvfb:-}" 2>/dev/null || true; rm -rf "$work"' EXIT

# The reference data, eight times the iterations and a slave at half speed:
# long enough to watch, and the slower slave gives jobs to the master.
cat > "$work/config.json" <<'JSON'
{
  "master": { "address": "127.0.0.1:17101" },
  "slave": { "address": "127.0.0.1:17102", "throttle": 0.5 },
  "workload": { "iterations": 8000 }
}
JSON

display=:${SCREENSHOT_DISPLAY:-93}
Xvfb "$display" -screen 0 1280x800x24 >/dev/null 2>&1 &
xvfb=$!
sleep 1
export DISPLAY=$display

# Starts the demo and waits for its window.
open_demo() {
    (cd "$work" && exec "$bin" demo --config config.json) >"$work/demo.log" 2>&1 &
    app=$!
    for _ in $(seq 50); do
        window=$(xdotool search --name 'loadbal demo' 2>/dev/null | head -1) && [ -n "$window" ] && break
        sleep 0.2
    done
    sleep 1
}

# Takes the screen into assets/NAME.png; a picture of one colour (a black
# screen, a window that drew nothing) is an error, not a picture. With a
# size, only that much of the screen (the window's top left).
shoot() {
    # The pointer out of the way: no hover line across a plot.
    xdotool mousemove 1279 799
    sleep 0.7
    import -window root "$work/shot.png"
    if [ -n "${2:-}" ]; then
        convert "$work/shot.png" -crop "$2+0+0" +repage "$work/shot.png"
    fi
    local spread
    spread=$(convert "$work/shot.png" -format '%[fx:standard_deviation]' info:)
    if python3 -c "import sys; sys.exit(0 if float('$spread') > 0.02 else 1)"; then
        mv "$work/shot.png" "assets/$1.png"
        echo "wrote assets/$1.png"
    else
        echo "screenshot.sh: assets/$1.png would be blank (spread $spread); demo log:" >&2
        cat "$work/demo.log" >&2
        exit 1
    fi
}
click() { xdotool mousemove "$1" "$2" click 1; }

# At 1280 x 800. Positions: the Start button right of the title; the tabs
# under the header (which gains a progress bar once a run starts); the
# Configuration and Compare toggles at the header's right end.
open_demo
shoot screenshot-before
click 147 16
sleep "${SCREENSHOT_AFTER:-1.5}"
shoot screenshot
# The run (about 3 s here) ends; the task stream and the jobs table show it.
sleep 3
click 129 63
shoot screenshot-stream
click 217 63
shoot screenshot-jobs
click 43 63
click 1222 16
shoot screenshot-config
click 1222 16
# Compare, every policy simulated: Simulate is the panel's fifth row.
click 1102 16
sleep 0.5
click 48 "${SCREENSHOT_SIMULATE_Y:-562}"
sleep "${SCREENSHOT_SIMULATE:-8}"
shoot screenshot-compare
# A run whose slave is stopped mid-run: every view gives one set of numbers.
click 1102 16
click 147 16
sleep 1
click 691 168
sleep 5
shoot screenshot-slave-stopped
click 129 63
shoot screenshot-slave-stopped-stream
kill "$app" 2>/dev/null || true
wait "$app" 2>/dev/null || true

# At 1024 x 700: the window made that small, the pictures cut to it.
open_demo
xdotool windowsize "$window" 1024 700
sleep 1
click 147 16
sleep 5
click 43 63
shoot small-overview 1024x700
click 966 16
shoot small-config 1024x700
click 846 16
shoot small-config-compare 1024x700
click 966 16
shoot small-compare 1024x700
