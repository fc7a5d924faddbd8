#!/usr/bin/env bash
# /health throughput: wactl serve (embedded default, 0 accounts) vs a bare
# net/http handler, both measured with wrk at 50 connections in the same run.
# Also reports the idle RSS of wactl serve. Usage: bench/health.sh [seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
make -s build >/dev/null   # the shipped binary: static, stripped
cp bin/wactl "$tmp/wactl"
go build -o "$tmp/bare" ./bench/barehttp

(cd "$tmp" && STATE_DIRECTORY="$tmp/data" PORT=18080 INSTANCE_ID=bench exec ./wactl serve --log-level warn) &
pid=$!
"$tmp/bare" -addr 127.0.0.1:18081 &
for port in 18080 18081; do
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
done
rss() { awk '/^(VmRSS|RssAnon|RssFile):/{printf "%s %s %s  ", $1, $2, $3}' /proc/$pid/status; }
# 7 s: after the start-up trim (daemon.trim_startup_memory, 5 s after
# listening). It can evict only pages already written back: an installed
# binary's are, this fresh copy's are not until synced.
sync "$tmp/wactl"
sleep 7
echo "idle RSS of wactl serve (0 accounts): $(rss)"

run() { wrk -t2 -c50 -d"${secs}s" --latency "http://127.0.0.1:$1/health"; }
echo "== bare net/http handler"; bare=$(run 18081); echo "$bare" | grep -E "Requests/sec|99%|Non-2xx" || true
echo "== wactl /health";         wactl=$(run 18080); echo "$wactl" | grep -E "Requests/sec|99%|Non-2xx" || true
rb=$(echo "$bare" | awk '/Requests\/sec/{print $2}')
rw=$(echo "$wactl" | awk '/Requests\/sec/{print $2}')
echo "ratio wactl/bare: $(awk -v a="$rw" -v b="$rb" 'BEGIN{printf "%.2f", a/b}')"
echo "RSS after the load: $(rss)"
