#!/bin/sh
# Instructions per connection for one protocol and target, counted by callgrind (repeatable on a
# loaded machine, unlike µs): bench/connection-life.ts built with tsc, run at two connection counts
# after the same warm-up; (Ir(N2) − Ir(N1)) / (N2 − N1) leaves start-up, JIT warm-up and teardown out.
# Both ends of the loopback connection are counted (client in the same process).
# Usage: [NODE_FLAGS=...] [WARMUP=300] bench/connection-cost.sh BUILD_DIR PROTOCOL TARGET [N1 N2 [NODE]]
#   e.g. npx tsc -p tsconfig.test.json --outDir /tmp/clb && bench/connection-cost.sh /tmp/clb scgi postern
# Every batch must run to its count: the bench's time budget is raised to an hour, and a run that
# still fell short (the count it printed is not N) is an error, not a figure.
set -eu
build=$1 protocol=$2 target=$3 n1=${4:-200} n2=${5:-700} node=${6:-node} warmup=${WARMUP:-300}
out=$(mktemp -d)
for n in "$n1" "$n2"; do
  valgrind --tool=callgrind --dump-instr=no --callgrind-out-file="$out/cg.$n" \
    "$node" ${NODE_FLAGS:-} "$build/bench/connection-life.js" --protocol "$protocol" --target "$target" --rounds 1 --warmup "$warmup" --conns 8 --n "$n" \
    --budget-ms 3600000 >"$out/log.$n" 2>&1
  if ! grep -q " $warmup connections\$" "$out/log.$n" || ! grep -q " $n connections\$" "$out/log.$n"; then
    echo "$protocol $target: the run with n=$n did not complete its connections:" >&2
    cat "$out/log.$n" >&2
    rm -rf "$out"
    exit 1
  fi
done
a=$(sed -n 's/^summary: //p' "$out/cg.$n1")
b=$(sed -n 's/^summary: //p' "$out/cg.$n2")
echo "$("$node" --version)${NODE_FLAGS:+ $NODE_FLAGS} warmup $warmup $protocol $target: $(( (b - a) / (n2 - n1) )) instructions/connection (Ir $a at n=$n1, $b at n=$n2)"
rm -rf "$out"
