#!/usr/bin/env bash
# One host, many accounts (issue 21 item 3): restore time, RSS, idle CPU,
# fds/goroutines/SQLite files, /health and dashboard vs a bare handler.
# Usage: bench/scale.sh [accounts]   (default 200; wrk: apt-get install wrk)
set -euo pipefail
cd "$(dirname "$0")/.."
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) cores)"
WACTL_BENCH_ACCOUNTS=${1:-200} go test -count=1 -run '^$' -bench BenchmarkScale -benchtime 1x -timeout 60m ./bench/scale/
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
