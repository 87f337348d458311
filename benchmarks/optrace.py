#!/usr/bin/env python3
"""Sum SameDiff op-level profiles written by the plug-in runtime.

Run any JVM with -Ddl4jcnnplugins.trace=/tmp/trace (every plug-in graph then writes
/tmp/trace-<layer>-<train|infer>-<id>.json, Chrome trace format), then:

    benchmarks/optrace.py '/tmp/trace-*.json' [top]

prints, per op name, the total time, the number of runs and the share of all recorded op time.
"""
import collections
import glob
import json
import sys


def load(path):
    text = open(path).read().strip()
    if not text:
        return []
    if not text.endswith(']'):          # a run that ended before the listener closed the array
        text = text.rstrip(',\n') + ']'
    events = json.loads(text)
    return events.get('traceEvents', []) if isinstance(events, dict) else events


def main():
    pattern = sys.argv[1] if len(sys.argv) > 1 else '/tmp/trace-*.json'
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 25
    total, runs = collections.Counter(), collections.Counter()
    files = sorted(glob.glob(pattern))
    for path in files:
        for e in load(path):
            if e.get('ph') == 'X':
                total[e['name']] += e.get('dur', 0)
                runs[e['name']] += 1
    all_us = sum(total.values()) or 1
    print(f'{len(files)} trace files, {all_us / 1000:.1f} ms of op time')
    print(f'{"ms":>10} {"runs":>7} {"share":>6}  op')
    for name, us in total.most_common(top):
        print(f'{us / 1000:10.1f} {runs[name]:7d} {100 * us / all_us:5.1f}%  {name}')


if __name__ == '__main__':
    main()
