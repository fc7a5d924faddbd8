#!/usr/bin/env bash
# Lock figures for docs/performance.md: acquire latency and takeover time
# after kill -9 (median and max over 20 trials) against the Firestore
# emulator, default (20/5/5/5 s) and fast (2 s TTL) profiles. ~6 minutes.
set -euo pipefail
cd "$(dirname "$0")/../.."
go test ./pkg/lock -run 'TestMeasure$' -lock.measure -count=1 -v -timeout 20m | grep -E 'profile|^(ok|FAIL|---)'
go test ./pkg/lock -run '^$' -bench BenchmarkAcquire -benchtime 20x -count=1
