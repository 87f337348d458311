#!/usr/bin/env bash
# benchmarks/compare.sh: PyTorch (shared/reference/bench_torch.py) and DL4J (bin/plugins bench) side by side on
# this machine, in one go; writes BENCHMARKS.md at the repository root.
#
#   benchmarks/compare.sh [--threads N] [--runs N] [--warmup N] [--warmup-seconds S] [--retries N] [--only NAME...]
#                         [--out FILE] [--classifier C]
#
# Defaults: 2 threads, 10 runs after 6 warm-ups (DL4J: and then more, at least 10 s per quantity and until the JIT
# compiler has settled, bin/plugins bench --jit-quiet; PyTorch has no JIT and is steady after one or two), a case with bg% > 5 re-timed up to 3 times after 20 s (as
# bench_torch.py), every case of bench_cases.json, the default ND4J build (--classifier linux-x86_64-onednn etc.
# builds bin/plugins with -Dnd4j.classifier=C). GFLOP/s = nominal MACs of the case (benchmarks/macs.py, counted on
# the PyTorch module) x 2 / fwd time, x 6 / fwd+bwd time, for the conv-heavy cases. A "## Notes" section at the end
# of an existing FILE is kept.
# Needs Debian's python3-torch for the reference half (apt-get install -y python3-torch python3-torchvision) and
# ../shared/reference beside this checkout (or REFERENCE=dir). Python is used only here, never by the build or the
# tests. Both benches report bg% (CPU used by other processes while a case ran): on a shared machine read every row
# with a high bg% as disturbed. The two halves run one after the other, not at the same time.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
ref=${REFERENCE:-$root/../shared/reference}
py=${PYTHON:-/usr/bin/python3}
threads=2 runs=10 warmup=6 warmup_seconds=10 retries=3 out="$root/BENCHMARKS.md" only=() classifier=""
while [ $# -gt 0 ]; do
    case "$1" in
        --threads) threads=$2; shift 2 ;;
        --runs) runs=$2; shift 2 ;;
        --warmup) warmup=$2; shift 2 ;;
        --warmup-seconds) warmup_seconds=$2; shift 2 ;;
        --retries) retries=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --classifier) classifier=$2; shift 2 ;;
        --only) shift; while [ $# -gt 0 ] && [[ "$1" != --* ]]; do only+=("$1"); shift; done ;;
        -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "compare.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
[ -f "$ref/bench_torch.py" ] || { echo "compare.sh: no $ref/bench_torch.py (set REFERENCE=dir)" >&2; exit 1; }
"$py" -c 'import torch' 2>/dev/null || { echo "compare.sh: $py cannot import torch (apt-get install -y python3-torch)" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
onlyargs=()
[ ${#only[@]} -gt 0 ] && onlyargs=(--only "${only[@]}")

"$py" "$root/benchmarks/macs.py" --reference "$ref" > "$tmp/macs.txt"
echo "compare.sh: PyTorch reference ($threads threads) ..." >&2
start=$(date -u +%Y-%m-%dT%H:%MZ); load0=$(cut -d' ' -f1-3 /proc/loadavg)
"$py" "$ref/bench_torch.py" --cases "$ref/bench_cases.json" --threads "$threads" --runs "$runs" --warmup "$warmup" \
    --retries "$retries" "${onlyargs[@]}" | tee "$tmp/torch.txt" >&2
load1=$(cut -d' ' -f1-3 /proc/loadavg)
echo "compare.sh: DL4J (bin/plugins bench, $threads threads) ..." >&2
extra="${MVN_OPTS_EXTRA:-}"
[ -n "$classifier" ] && extra="$extra -Dnd4j.classifier=$classifier"
MVN_OPTS_EXTRA="$extra" OMP_NUM_THREADS=$threads "$root/bin/plugins" bench --cases "$ref/bench_cases.json" --threads "$threads" --runs "$runs" \
    --warmup "$warmup" --warmup-seconds "$warmup_seconds" --retries "$retries" "${onlyargs[@]}" | tee "$tmp/dl4j.txt" >&2
load2=$(cut -d' ' -f1-3 /proc/loadavg)

"$py" - "$tmp/torch.txt" "$tmp/dl4j.txt" "$out" "$start" "$threads" "$runs" "$warmup" "$retries" "$load0" "$load1" "$load2" \
    "$tmp/macs.txt" "$classifier" "$warmup_seconds" <<'PY'
import os, platform, re, subprocess, sys
(torch_file, dl4j_file, out, start, threads, runs, warmup, retries, load0, load1, load2, macs_file,
 classifier, warmup_seconds) = sys.argv[1:]

# Modules whose time is mostly convolutions / matrix products: the ones with a GFLOP/s column.
CONV_HEAVY = {"NonLocal", "ASPP", "GhostModule", "RFB", "ASFF", "CoordConv", "DeformConv2d"}
macs = {}
for line in open(macs_file):
    f = line.split()
    if len(f) == 3 and not line.startswith("#") and f[0] != "name":
        macs[f[0]] = float(f[2]) * 1e9
notes = ""
if os.path.exists(out):
    text = open(out).read()
    i = text.find("\n## Notes")
    if i >= 0:
        notes = text[i + 1:]

def rows(path):
    header, table = [], {}
    for line in open(path):
        line = line.rstrip("\n")
        if line.startswith("#"):
            header.append(line)
            continue
        f = line.split()
        if not f or f[0] == "name":
            continue
        # name module shapes fwd fwd+bwd bg% [peak MB heap MB]; or "unsupported"/"error"
        def num(i):
            try:
                return float(f[i])
            except (IndexError, ValueError):
                return None
        table[f[0]] = {"module": f[1], "shapes": f[2], "fwd": num(3), "fb": num(4), "bg": num(5),
                       "peak": num(6), "text": " ".join(f[3:])}
    return header, table

th, tt = rows(torch_file)
dh, dt = rows(dl4j_file)

def cpu():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()

flags = next((l for l in open("/proc/cpuinfo") if l.startswith("flags")), "").split()
simd = ", ".join(x for x in ("avx2", "fma", "avx512f") if x in flags) or "none of avx2/fma/avx512f"
java = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr.splitlines()[0]

def f(v, fmt="{:.2f}"):
    return "-" if v is None else fmt.format(v)

def ratio(a, b):
    return "-" if a is None or b is None or b == 0 else f"{a / b:.1f}x"

lines = []
w = lines.append
w("# Benchmarks: DL4J plug-ins vs the PyTorch reference (CPU)")
w("")
opt = f" --classifier {classifier}" if classifier else ""
w(f"Written by `benchmarks/compare.sh --threads {threads} --runs {runs} --warmup {warmup} --warmup-seconds {warmup_seconds} --retries {retries}{opt}` on {start}. "
  "Both halves ran on the same machine, one after the other; each prints its own bg% (CPU used by other "
  "processes while the case ran, % of all CPUs). **A row with a high bg% was disturbed** and its time is "
  "not a property of the code: compare ratios only between rows with low bg% on both sides.")
w("")
w("| | |")
w("|---|---|")
w(f"| machine | {cpu()}, {len(__import__('os').sched_getaffinity(0))} CPUs ({simd}), {platform.system()} {platform.release()} |")
w(f"| load average (1/5/15 min) | before PyTorch {load0}; before DL4J {load1}; after {load2} |")
w(f"| PyTorch | {th[0].lstrip('# ') if th else '?'} |")
w(f"| DL4J | {dh[0].lstrip('# ') if dh else '?'}; {java} |")
w(f"| threads | {threads} on both sides (torch.set_num_threads; ND4J maxThreads, BLAS threads and OMP_NUM_THREADS) |")
w(f"| timing | float32, train mode, median of {runs} runs after {warmup} warm-ups (DL4J: and then more, at least {warmup_seconds} s "
  "per quantity and until the JIT compiler has settled: the steady state of a training run; per-case warm-up in the "
  "`# warm-up` lines of the raw output); fwd = forward (PyTorch under no_grad), "
  "fwd+bwd = forward + backward of a fixed random upstream gradient, inputs requiring grad |")
w("")
w("| case | module | input | PyTorch fwd ms | DL4J fwd ms | DL4J/PyTorch fwd | PyTorch fwd+bwd ms | DL4J fwd+bwd ms "
  "| DL4J/PyTorch fwd+bwd | GMAC | GFLOP/s fwd PyTorch / DL4J | GFLOP/s fwd+bwd PyTorch / DL4J "
  "| PyTorch bg% | DL4J bg% | DL4J peak MB |")
w("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")

def gflops(mac, factor, ms):
    if mac is None or ms is None or ms <= 0:
        return "-"
    v = factor * mac / ms / 1e6
    return f"{v:.1f}" if v < 10 else f"{v:.0f}"

for name in list(tt) + [n for n in dt if n not in tt]:
    t, d = tt.get(name, {}), dt.get(name, {})
    m = t.get("module") or d.get("module")
    shp = (t.get("shapes") or d.get("shapes") or "").replace(",", ", ")
    dfwd = f(d.get("fwd")) if d.get("fwd") is not None else (d.get("text") or "-")
    mac = macs.get(name) if m in CONV_HEAVY else None
    gf = "-" if mac is None else f"{gflops(mac, 2, t.get('fwd'))} / {gflops(mac, 2, d.get('fwd'))}"
    gfb = "-" if mac is None else f"{gflops(mac, 6, t.get('fb'))} / {gflops(mac, 6, d.get('fb'))}"
    w(f"| {name} | {m} | {shp} | {f(t.get('fwd'))} | {dfwd} | {ratio(d.get('fwd'), t.get('fwd'))} | {f(t.get('fb'))} "
      f"| {f(d.get('fb'))} | {ratio(d.get('fb'), t.get('fb'))} | {f(mac / 1e9, '{:.2f}') if mac else '-'} | {gf} | {gfb} "
      f"| {f(t.get('bg'), '{:.1f}')} | {f(d.get('bg'), '{:.1f}')} | {f(d.get('peak'), '{:.0f}')} |")
w("")
w("DL4J peak MB: growth of the process's resident memory during one extra untimed forward+backward "
  "(see the `# memory:` line of the raw output below). GMAC: nominal multiply-accumulates of one forward "
  "(`benchmarks/macs.py`: convolutions, linear layers, matrix products, deformable convolutions, counted on the "
  "PyTorch module); GFLOP/s = 2 x MAC / fwd time and 6 x MAC / fwd+bwd time, the same work credited to both sides, "
  "for the conv-heavy modules only.")
w("")
w("## Raw output")
w("")
w("PyTorch (`bench_torch.py`):")
w("```")
lines.extend(l.rstrip("\n") for l in open(torch_file))
w("```")
w("")
w("DL4J (`bin/plugins bench`):")
w("```")
lines.extend(l.rstrip("\n") for l in open(dl4j_file))
w("```")
text = "\n".join(lines) + "\n"
if notes:
    text += "\n" + notes
open(out, "w").write(text)
print(f"compare.sh: wrote {out}", file=sys.stderr)
PY
