#!/usr/bin/env bash
# Message latency as the app's users feel it (issue 21 items 1 and 2):
# inbound (fake WhatsApp server → document readable) and outbound
# (send-message → fake server → document at "sent"), 20 accounts, on the
# embedded store and the Firestore emulator, each with its bare baseline in
# the same run (outbound: a bare SendMessage in this process, beside the
# fake, and one from a process of its own, as the daemon is). Short by default (rates 1, 100, 1,000 msg/s for 20, 5, 2 s);
# WACTL_BENCH_RATES="rate:seconds,…" changes them. Every inbound clock
# starts at the message's due time, outbound ones at the call. Also:
# WACTL_BENCH_LEG=1|0 (the WhatsApp-leg baselines; on for embedded only by
# default), WACTL_BENCH_BARE_SECS (cap the bare write phase), WACTL_BENCH_
# DRAIN_SECS (wait for the last document; 120), WACTL_BENCH_PROFILE_DIR
# (goroutine dumps of the daemon during each inbound drain; it also prints
# the daemon's pprof address, for a CPU profile taken by hand in a phase).
# Usage: bench/latency.sh [Inbound|Outbound] [embedded|firestore]
set -euo pipefail
cd "$(dirname "$0")/.."
which=${1:-}
backend=${2:-}
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) cores)"
go test -count=1 -run '^$' -bench "Benchmark${which}.*/${backend}" -benchtime 1x -timeout 30m ./bench/latency/
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
