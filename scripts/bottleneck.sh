#!/usr/bin/env bash
# Runs a master and a slave across a real bottleneck: two network namespaces
# joined by a veth pair, with a token-bucket filter (`tc tbf`) on each end,
# and prints the useful throughput of the bootstrap against the
# bottleneck's rate and the share of datagrams the bottleneck dropped.
#
#   sudo scripts/bottleneck.sh                 # 10 Mbit/s, the built binary
#   sudo RATE=50mbit LIMIT=64kb scripts/bottleneck.sh
#
# RATE and LIMIT (the tbf queue, bytes) shape both directions; JOBS and
# ELEMENTS size the workload (default 64 jobs of 16384 doubles: 4 MiB each
# way); LOADBAL picks another binary (to compare builds). Needs root, ip and
# tc (Debian's iproute2). Everything it makes is removed when it ends.
set -euo pipefail
cd "$(dirname "$0")/.."

rate=${RATE:-10mbit}
limit=${LIMIT:-30kb}
jobs=${JOBS:-64}
elements=${ELEMENTS:-16384}
[ "$(id -u)" = 0 ] || { echo "bottleneck.sh: needs root (network namespaces)" >&2; exit 2; }
for tool in ip tc python3; do
    command -v "$tool" >/dev/null || {
        echo "bottleneck.sh: needs $tool (Debian packages iproute2, python3)" >&2
        exit 2
    }
done
if [ -z "${LOADBAL:-}" ]; then
    command -v cargo >/dev/null || {
        echo "bottleneck.sh: no cargo on root's PATH: build first and name the binary," >&2
        echo "  cargo build --release && sudo LOADBAL=target/release/loadbal $0" >&2
        exit 2
    }
    cargo build --release --quiet
    LOADBAL="${CARGO_TARGET_DIR:-target}/release/loadbal"
fi
[ -x "$LOADBAL" ] || { echo "bottleneck.sh: $LOADBAL is not an executable" >&2; exit 2; }
LOADBAL=$(realpath "$LOADBAL")

tag=lb$$
ns_m=${tag}m ns_s=${tag}s
work=$(mktemp -d)
cleanup() {
    ip netns pids "$ns_s" 2>/dev/null | xargs -r kill 2>/dev/null || true
    ip netns del "$ns_m" 2>/dev/null || true
    ip netns del "$ns_s" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

ip netns add "$ns_m"
ip netns add "$ns_s"
ip link add "${tag}a" type veth peer name "${tag}b"
ip link set "${tag}a" netns "$ns_m"
ip link set "${tag}b" netns "$ns_s"
ip -n "$ns_m" addr add 10.250.0.1/24 dev "${tag}a"
ip -n "$ns_s" addr add 10.250.0.2/24 dev "${tag}b"
for ns in "$ns_m" "$ns_s"; do ip -n "$ns" link set lo up; done
ip -n "$ns_m" link set "${tag}a" up
ip -n "$ns_s" link set "${tag}b" up
ip netns exec "$ns_m" tc qdisc add dev "${tag}a" root tbf rate "$rate" burst 32kbit limit "$limit"
ip netns exec "$ns_s" tc qdisc add dev "${tag}b" root tbf rate "$rate" burst 32kbit limit "$limit"

secret=$("$LOADBAL" keygen 2>/dev/null)
cat > "$work/config.json" <<JSON
{
  "master": { "address": "10.250.0.1:7001" },
  "slave": { "address": "10.250.0.2:7002" },
  "secret": "$secret",
  "workload": { "jobs": $jobs, "elements_per_job": $elements, "iterations": 10 },
  "network": { "compression": false }
}
JSON

ip netns exec "$ns_s" "$LOADBAL" --role slave --headless --config "$work/config.json" \
    >"$work/slave.log" 2>&1 &
slave=$!
sleep 0.3
status=0
ip netns exec "$ns_m" "$LOADBAL" --role master --headless --config "$work/config.json" \
    --report "$work/report.json" >"$work/master.log" 2>&1 || status=$?
wait "$slave" || true
if [ "$status" != 0 ]; then
    echo "bottleneck.sh: the master ended with $status; its log:" >&2
    tail -20 "$work/master.log" >&2
    exit 1
fi

grep -E "bootstrap done|phase: processing" "$work/master.log" | head -2
dropped_m=$(ip netns exec "$ns_m" tc -s qdisc show dev "${tag}a" | sed -n 's/.*dropped \([0-9]*\).*/\1/p' | head -1)
python3 - "$work/report.json" "$rate" "$jobs" "$elements" "$dropped_m" <<'PY'
import json, re, sys
report, rate, jobs, elements, dropped = sys.argv[1:6]
r = json.load(open(report))
units = {"kbit": 1e3, "mbit": 1e6, "gbit": 1e9, "bit": 1}
m = re.fullmatch(r"([0-9.]+)([a-z]+)", rate)
bps = float(m.group(1)) * units[m.group(2)]
half = int(jobs) // 2
payload = half * (8 + int(elements) * 8)
boot = r["elapsed_s"]["bootstrap"]
net = r["network"]
sent, resent = net["datagrams_sent"], net["retransmitted"]
print(f"bottleneck {rate}, tbf limit as given; verified: {r['verified']}")
print(f"bootstrap: {payload / 1e6:.2f} MB in {boot:.2f} s = "
      f"{payload * 8 / boot / 1e6:.2f} Mbit/s useful, {payload * 8 / boot / bps:.3f} of the bottleneck")
print(f"master: {sent} datagrams sent, {resent} resent; the bottleneck dropped {dropped} "
      f"({int(dropped) / sent * 100:.1f} %)")
print(f"run: {r['elapsed_s']['total']:.2f} s in all")
PY
