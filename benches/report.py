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


def is_baseline(name):
    return name.startswith("bare") or name.startswith("baseline")


def baseline(cases, name):
    """The case `name` compares to: the baseline with the same ", subject" suffix, else the
    group's only bare/baseline case."""
    if "," in name:
        subject = name.split(",", 1)[1]
        for other in cases:
            if is_baseline(other) and other.endswith("," + subject):
                return other
    plain = [c for c in cases if is_baseline(c) and "," not in c]
    return plain[0] if plain else None


def order(cases):
    """Baselines first, then the rest, each group sorted by the subject they measure."""
    def key(name):
        subject = name.split(",", 1)[1] if "," in name else ""
        return (subject, not is_baseline(name), name)
    return sorted(cases, key=key)


def main():
    groups = medians()
    allocs = allocations()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print("# Benchmarks\n")
    print(f"Written by `benches/run.sh` on {date.today()} at commit `{commit}`, {platform.machine()}, "
          f"{os.cpu_count()} cores. Medians of criterion runs (1 s warm-up, 3 s measurement); "
          "each group's baseline ran in the same run, but minutes apart from some cases: for the "
          "success path and loopback read the interleaved tables further down. Allocations are counted "
          "per call over 1000 calls (layers bench only).\n")
    # Each round's own measurements, newest first, kept by hand.
    rounds = os.path.join(os.path.dirname(__file__), "rounds.md")
    if os.path.exists(rounds):
        with open(rounds) as f:
            print(f.read())
    for group, cases in groups.items():
        print(f"## {group}\n")
        print("| case | median | Δ baseline | ratio | allocations |")
        print("|---|---|---|---|---|")
        for name in order(cases):
            ns = cases[name]
            base = baseline(cases, name)
            if base:
                delta = f"{ns - cases[base]:+.0f} ns"
                ratio = f"{ns / cases[base]:.2f}x"
            else:
                delta = ratio = ""
            alloc = allocs.get(f"{group}/{name}")
            alloc = f"{alloc:g}" if alloc is not None else ""
            print(f"| {name} | {ns:.0f} ns | {delta} | {ratio} | {alloc} |")
        print()
    tsv_table(
        "success_interleaved.tsv",
        "success path, interleaved",
        "The cases of `success_path` and `retry_success_path` taking turns, 128 calls each "
        "per round over 1000 rounds, each round starting with another case (see `Turns` in "
        "`benches/benches/layers.rs`): medians over the rounds of the mean per call, and of "
        "the difference to the bare service in the same round (the ratio is that difference "
        "over the bare median). Criterion's medians "
        "above come from one case after another, and this VM drifts by tens of ns between "
        "them; these do not, so the findings read these.",
        ["case", "median", "Δ bare", "ratio to bare", "allocations per call"],
        turns_row(ratio_digits=2),
    )
    tsv_table(
        "one_retry_interleaved.tsv",
        "one retry with zero backoff, interleaved",
        "The cases of `one_retry_zero_backoff` (each call fails once, then succeeds) taking "
        "turns in the same way, against tower's `Retry`.",
        ["case", "median", "Δ tower's Retry", "ratio to tower's Retry", "allocations per call"],
        turns_row(ratio_digits=2),
    )
    tsv_table(
        "instructions.tsv",
        "instructions per call (callgrind)",
        "The success path of each case counted by `benches/instructions.sh` (valgrind's "
        "callgrind, 100,000 calls): exact and repeatable, so small differences are real. "
        "Building each request is included alike in every case. The `loopback-` cases "
        "(10,000 calls over loopback HTTP/1.1) count the server's thread too, the same work "
        "in each: read their differences to `loopback-bare`, which vary by a few hundred "
        "with the threads' timing. Atomic operations and clock reads count a few "
        "instructions each but cost 7 to 20 ns on this VM: times and perf judge those.",
        ["case", "instructions per call", "Δ bare", "response future", "response"],
        lambda name, per_call, delta, size, response: [name, per_call, delta, size, response],
    )
    tsv_table(
        "loopback_interleaved.tsv",
        "loopback, interleaved",
        "The services taking turns, 100 calls each per round over 300 rounds, against the "
        "testkit server on a thread of its own (see `Turns` in "
        "`benches/benches/layers.rs`): medians over the rounds of the mean per call, and of "
        "the difference to the bare client in the same round (the ratio is that difference "
        "over the bare median).",
        ["case", "median", "Δ bare", "ratio to bare", "allocations per call (server's included)"],
        turns_row(ratio_digits=3),
    )


def turns_row(ratio_digits):
    """A row of a table of cases taking turns (`Turns` in the layers bench): the case, its
    median per call, its median difference to the baseline (the file's first line) and that
    difference over the baseline's median, its allocations per call."""
    baseline = []

    def row(name, ns, delta, allocs):
        if not baseline:
            baseline.append(float(ns))
        ratio = 1 + float(delta) / baseline[0]
        return [name, f"{float(ns):.0f} ns", f"{float(delta):+.0f} ns", f"{ratio:.{ratio_digits}f}x", allocs]

    return row


def tsv_table(file, title, intro, header, row):
    """A section from a tab-separated file the benches wrote, if it is there: each line's
    fields go through `row` into one table row."""
    path = os.path.join(ROOT, file)
    if not os.path.exists(path):
        return
    print(f"## {title}\n")
    print(intro + "\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    with open(path) as f:
        for line in f:
            print("| " + " | ".join(row(*line.rstrip("\n").split("\t"))) + " |")
    print()

main()

findings = os.path.join(os.path.dirname(__file__), "findings.md")
if os.path.exists(findings):
    with open(findings) as f:
        print(f.read())
