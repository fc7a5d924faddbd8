#!/usr/bin/env bash
# One host, many accounts (issue 21 item 3): restore time, RSS, idle CPU,
# fds/goroutines/SQLite files, /health and dashboard vs a bare handler.
# Usage: bench/scale.sh [accounts[,accounts…]]   (default 200; a list is a sweep
# that stops at the break point unless WACTL_BENCH_PAST_BREAK=1; wrk: apt-get install wrk;
# WACTL_BENCH_WRK_SECS (0: no wrk), WACTL_BENCH_WRK_ROUNDS, WACTL_BENCH_IDLE_SECS;
# WACTL_BENCH_PERF=DIR records perf profiles of the restore, and with
# WACTL_BENCH_PERF_WRK=1 of the first round of wrk runs too)
set -euo pipefail
cd "$(dirname "$0")/.."
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) cores)"
WACTL_BENCH_ACCOUNTS=${1:-200} go test -count=1 -run '^$' -bench BenchmarkScale -benchtime 1x -timeout 60m ./bench/scale/
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
