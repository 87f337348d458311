#!/usr/bin/env bash
# benchmarks/backbone.sh: what SE and CBAM add to a ResNet stage, in PyTorch (benchmarks/backbone_torch.py) and in
# DL4J (bin/plugins backbone), one after the other on this machine; prints both raw tables and a markdown table of
# the overhead (% over the plain stage) to stdout.
#
#   benchmarks/backbone.sh [--threads N] [--runs N] [--warmup N] [--classifier C] [-- extra args for both sides]
#
# Defaults: 2 threads, 5 rounds after 30 warm-ups (the JVM JIT-compiles SameDiff's paths over the first ~100 plug-in
# passes; 2 warm-ups timed DL4J partly while compiling), the default ND4J build; extra args (e.g. --size 28 --batch 4) go
# to both sides. Needs Debian's python3-torch and ../shared/reference (or REFERENCE=dir).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
ref=${REFERENCE:-$root/../shared/reference}
py=${PYTHON:-/usr/bin/python3}
threads=2 runs=5 warmup=30 classifier="" extra=()
while [ $# -gt 0 ]; do
    case "$1" in
        --threads) threads=$2; shift 2 ;;
        --runs) runs=$2; shift 2 ;;
        --warmup) warmup=$2; shift 2 ;;
        --classifier) classifier=$2; shift 2 ;;
        --) shift; extra=("$@"); break ;;
        -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "backbone.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
common=(--threads "$threads" --runs "$runs" --warmup "$warmup" "${extra[@]}")

echo "# load average before PyTorch: $(cut -d' ' -f1-3 /proc/loadavg)"
REFERENCE="$ref" "$py" "$root/benchmarks/backbone_torch.py" "${common[@]}" | tee "$tmp/torch.txt"
echo "# load average before DL4J: $(cut -d' ' -f1-3 /proc/loadavg)"
mvnextra="${MVN_OPTS_EXTRA:-}"
[ -n "$classifier" ] && mvnextra="$mvnextra -Dnd4j.classifier=$classifier"
MVN_OPTS_EXTRA="$mvnextra" OMP_NUM_THREADS=$threads "$root/bin/plugins" backbone "${common[@]}" | tee "$tmp/dl4j.txt"
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

"$py" - "$tmp/torch.txt" "$tmp/dl4j.txt" <<'PY'
import sys

def table(path):
    rows = {}
    for line in open(path):
        f = line.split()
        if f and not line.startswith("#") and f[0] != "variant":
            rows[f[0]] = [float(v) for v in f[1:]]
    return rows

t, d = table(sys.argv[1]), table(sys.argv[2])   # torch: params GMAC fwd fb bg; dl4j: params fwd fb bg

def pct(rows, v, i):
    base = rows.get("plain")
    if base is None or v not in rows:
        return "-"
    x = 100 * (rows[v][i] / base[i] - 1)
    return f"{x:+.2f}%" if abs(x) >= 0.1 or x == 0 else f"{x:+.4f}%"

print()
print("| variant | params | params added | GMAC | MACs added | PyTorch fwd ms | added | PyTorch fwd+bwd ms | added "
      "| DL4J fwd ms | added | DL4J fwd+bwd ms | added |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for v in t:
    tr, dr = t[v], d.get(v)
    dl = (f"{dr[1]:.1f} | {pct(d, v, 1)} | {dr[2]:.1f} | {pct(d, v, 2)}") if dr else "- | - | - | -"
    print(f"| {v} | {int(tr[0])} | {pct(t, v, 0)} | {tr[1]:.4f} | {pct(t, v, 1)} | {tr[2]:.1f} | {pct(t, v, 2)} "
          f"| {tr[3]:.1f} | {pct(t, v, 3)} | {dl} |")
PY
