"""Writes BENCHMARKS.md from criterion's estimates and the allocation counts of the layers bench."""
import json
import os
import platform
import subprocess
from datetime import date

ROOT = os.path.join(os.path.dirname(__file__), "..", "target", "criterion")


def medians():
    groups = {}
    for group in sorted(os.listdir(ROOT)):
        path = os.path.join(ROOT, group)
        if not os.path.isdir(path) or group == "report":
            continue
        for case in os.listdir(path):
            estimates = os.path.join(path, case, "new", "estimates.json")
            meta = os.path.join(path, case, "new", "benchmark.json")
            if not os.path.exists(estimates):
                continue
            with open(meta) as f:
                name = json.load(f)["function_id"]
            with open(estimates) as f:
                groups.setdefault(group, {})[name] = json.load(f)["median"]["point_estimate"]
    return groups


def allocations():
    counts = {}
    path = os.path.join(ROOT, "allocations.tsv")
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                key, value = line.rstrip("\n").split("\t")
                counts[key] = float(value)
    return counts


def baseline(cases):
    for name in cases:
        if name.startswith("bare") or name.startswith("baseline"):
            return name
    return None


def main():
    groups = medians()
    allocs = allocations()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print("# Benchmarks\n")
    print(f"Written by `benches/run.sh` on {date.today()} at commit `{commit}`, {platform.machine()}, "
          f"{os.cpu_count()} cores. Medians of criterion runs (1 s warm-up, 3 s measurement); "
          "each group's baseline ran in the same run, so read the ratios. Allocations are counted "
          "per call over 1000 calls (layers bench only).\n")
    for group, cases in groups.items():
        base = baseline(cases)
        print(f"## {group}\n")
        print("| case | median | Δ baseline | ratio | allocations |")
        print("|---|---|---|---|---|")
        for name, ns in cases.items():
            if base:
                delta = f"{ns - cases[base]:+.0f} ns"
                ratio = f"{ns / cases[base]:.2f}x"
            else:
                delta = ratio = ""
            alloc = allocs.get(f"{group}/{name}")
            alloc = f"{alloc:g}" if alloc is not None else ""
            print(f"| {name} | {ns:.0f} ns | {delta} | {ratio} | {alloc} |")
        print()


main()
