#!/usr/bin/python3
"""Summarise `go test -bench -count N` output: the median of each metric per
benchmark, as a Markdown table. Usage: bench/medians.py < bench.txt"""
import re
import statistics
import sys
from collections import defaultdict

runs = defaultdict(lambda: defaultdict(list))
order = []
for line in sys.stdin:
    m = re.match(r"^(Benchmark\S+?)(?:-\d+)?\s+\d+\s+(.*)$", line)
    if not m:
        continue
    name, rest = m.group(1), m.group(2)
    if name not in runs:
        order.append(name)
    for value, unit in re.findall(r"([\d.]+)\s+(\S+)", rest):
        runs[name][unit].append(float(value))

units = []
for name in order:
    for u in runs[name]:
        if u not in units:
            units.append(u)
print("| benchmark | " + " | ".join(units) + " |")
print("|---|" + "---|" * len(units))
for name in order:
    cells = []
    for u in units:
        v = runs[name].get(u)
        cells.append(f"{statistics.median(v):.4g}" if v else "")
    print(f"| {name} | " + " | ".join(cells) + " |")
