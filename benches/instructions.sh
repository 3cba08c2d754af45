#!/usr/bin/env bash
# Counts the instructions per call of each success-path case under callgrind (exact and
# repeatable, unlike times on a shared VM) and writes target/criterion/instructions.tsv:
# case, instructions per call, difference to the bare service. Needs valgrind; about a minute.
# Loopback cases count the server's thread too (the same work in each): read their deltas.
# Decode cases (decode-<format>) decode one error body per call: read their instructions per call.
# Usage: benches/instructions.sh [case ...]   (no case: all of them)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "instructions.sh: valgrind not found" >&2; exit 1; }
cargo build --release --quiet -p towline-benches --example instructions
bin="${CARGO_TARGET_DIR:-target}/release/examples/instructions"
cases=("$@")
[ ${#cases[@]} -eq 0 ] && mapfile -t cases < <("$bin" list)
[ "${cases[0]}" = bare ] || cases=(bare "${cases[@]}")
mkdir -p "${CARGO_TARGET_DIR:-target}/criterion"
out="${CARGO_TARGET_DIR:-target}/criterion/instructions.tsv"
: > "$out"
sizes=$("$bin" sizes)
bare=
for case in "${cases[@]}"; do
  total=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$case" 2>&1 \
    | sed -n 's/.*Collected : \([0-9]*\).*/\1/p')
  per_call=$((total / $("$bin" calls "$case")))
  [ -z "$bare" ] && bare=$per_call
  size=$(printf '%s\n' "$sizes" | awk -F'\t' -v c="$case" '$1 == c { print $2 "\t" $3 }')
  printf '%s\t%s\t%+d\t%s\n' "$case" "$per_call" $((per_call - bare)) "$size" | tee -a "$out"
done
