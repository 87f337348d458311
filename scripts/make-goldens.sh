#!/usr/bin/env bash
# Regenerates the committed golden files from the PyTorch reference (never edit them by hand).
#   scripts/make-goldens.sh MODULE...      e.g.  scripts/make-goldens.sh SEBlock CBAM CoordConv BlurPool
# Needs Debian's python3-torch / python3-torchvision (apt-get install -y python3-torch python3-torchvision)
# and ../shared/reference beside this checkout (or REFERENCE=dir). Only this script needs Python.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
ref=${REFERENCE:-$here/../shared/reference}
out=$here/modules/plugins/src/test/resources/goldens
[ $# -gt 0 ] || { echo "usage: $0 MODULE..." >&2; exit 2; }
mkdir -p "$out"
names=$(/usr/bin/python3 - "$ref/cases.json" "$@" <<'PY'
import json, sys
cases = json.load(open(sys.argv[1]))
print(" ".join(c["name"] for c in cases if c["module"] in sys.argv[2:]))
PY
)
[ -n "$names" ] || { echo "no case in $ref/cases.json for: $*" >&2; exit 1; }
/usr/bin/python3 "$ref/make_goldens.py" --cases "$ref/cases.json" --out "$out" --only $names
