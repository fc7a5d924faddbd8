#!/usr/bin/env bash
# Idle RSS of `wactl serve` (0 accounts, embedded) over time, and what
# brings the executable's file pages back after the start-up trim (issue 21
# item 4): samples /proc/PID/smaps_rollup at the given seconds after start,
# and at each sample lists the executable's resident text pages by package
# (from /proc/PID/pagemap and the symbol table of the same build, built
# without -s -w so it has one; the code is the shipped build's).
# Usage: bench/idlerss.sh [seconds...]   (default: 7 15 30 45 60); needs root
# for pagemap page presence (it is readable by the owner too).
set -euo pipefail
cd "$(dirname "$0")/.."
samples=("${@:-7 15 30 45 60}"); samples=(${samples[@]})
tmp=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; wait 2>/dev/null; rm -rf "$tmp"' EXIT
CGO_ENABLED=0 go build -trimpath -o "$tmp/wactl" ./cmd/wactl
go tool nm -size -sort address "$tmp/wactl" | awk '$3=="T"||$3=="t"{print $1, $2, $4}' > "$tmp/syms"
sync "$tmp/wactl"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
(cd "$tmp" && STATE_DIRECTORY="$tmp/data" PORT=$((20000 + RANDOM % 20000)) INSTANCE_ID=bench exec ./wactl serve --log-level warn) &
pid=$!
t0=$(date +%s.%N)
prev=""
for s in "${samples[@]}"; do
  now=$(date +%s.%N); wait_s=$(awk -v a="$t0" -v b="$now" -v s="$s" 'BEGIN{d=s-(b-a); if(d>0) printf "%.2f", d; else print 0}')
  sleep "$wait_s"
  awk -v s="$s" '/^(Rss|Anonymous|Pss_File):/{printf "%s %s kB  ", $1, $2} END{printf "\n"}' /proc/$pid/smaps_rollup | sed "s/^/t=${s}s  /"
  python3 - "$pid" "$tmp/wactl" "$tmp/syms" "$prev" > "$tmp/now.$s" <<'PY'
import sys, struct, bisect, collections
pid, exe, symf, prev = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
syms = []
for l in open(symf):
    a, size, name = l.split(None, 2)
    syms.append((int(a, 16), int(size), name.strip()))
addrs = [s[0] for s in syms]
text = []
for l in open(f"/proc/{pid}/maps"):
    f = l.split()
    if len(f) >= 6 and f[5].endswith("/wactl") and "x" in f[1]:
        lo, hi = (int(x, 16) for x in f[0].split("-"))
        text.append((lo, hi))
res = set()
with open(f"/proc/{pid}/pagemap", "rb") as pm:
    for lo, hi in text:
        pm.seek(lo // 4096 * 8)
        raw = pm.read((hi - lo) // 4096 * 8)
        for i in range(len(raw) // 8):
            if struct.unpack_from("<Q", raw, i * 8)[0] >> 63:
                res.add(lo + i * 4096)
old = set()
if prev:
    old = {int(x) for x in open(prev).read().split()}
by = collections.Counter()
for page in sorted(res - old):
    i = bisect.bisect_right(addrs, page + 4095) - 1
    name = syms[i][2] if i >= 0 else "?"
    pkg = name.split("(")[0]
    pkg = pkg.rsplit("/", 1)
    last = pkg[-1].split(".")[0]
    by["/".join(pkg[:-1] + [last])] += 1
print(" ".join(str(p) for p in sorted(res)))
sys.stderr.write(f"  executable text resident: {len(res)*4} kB; came back since the last sample: {len(res-old)*4} kB, by package (pages): "
                 + ", ".join(f"{k} {v}" for k, v in by.most_common(12)) + "\n")
PY
  prev="$tmp/now.$s"
done
