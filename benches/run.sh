#!/usr/bin/env bash
# Runs every criterion bench in a bounded time (about 7 minutes on 2 cores) and writes the
# table into BENCHMARKS.md: median time per case, its delta and ratio to the group's baseline
# (its bare case, or the plain parse of the same body), and allocations per call; with
# valgrind installed, also the instructions per call of benches/instructions.sh. The sections
# kept by hand come from benches/rounds.md (each round's measurements, at the top) and
# benches/findings.md (at the end): edit those, not BENCHMARKS.md.
# Usage: benches/run.sh   (run it on a quiet machine; nothing else should be running)
set -euo pipefail
cd "$(dirname "$0")/.."
# A clean slate: report.py reads every case criterion has on disk, renamed ones included.
rm -rf target/criterion
for bench in layers envelope core; do
  cargo bench -p towline-benches --bench "$bench" -- --warm-up-time 1 --measurement-time 3 --noplot
done
if command -v valgrind >/dev/null; then
  benches/instructions.sh
else
  rm -f target/criterion/instructions.tsv
fi
python3 benches/report.py > BENCHMARKS.md
echo "wrote BENCHMARKS.md"
