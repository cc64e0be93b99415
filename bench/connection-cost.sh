#!/bin/sh
# Instructions per connection for one protocol and target, counted by callgrind (repeatable on a
# loaded machine, unlike µs): bench/connection-life.ts built with tsc, run at two connection counts
# after the same warm-up; (Ir(N2) − Ir(N1)) / (N2 − N1) leaves start-up, JIT warm-up and teardown out.
# Both ends of the loopback connection are counted (client in the same process).
# Usage: bench/connection-cost.sh BUILD_DIR PROTOCOL TARGET [N1 N2 [NODE]]
#   e.g. npx tsc -p tsconfig.test.json --outDir /tmp/clb && bench/connection-cost.sh /tmp/clb scgi postern
set -eu
build=$1 protocol=$2 target=$3 n1=${4:-200} n2=${5:-700} node=${6:-node}
out=$(mktemp -d)
for n in "$n1" "$n2"; do
  valgrind --tool=callgrind --dump-instr=no --callgrind-out-file="$out/cg.$n" \
    "$node" "$build/bench/connection-life.js" --protocol "$protocol" --target "$target" --rounds 1 --warmup 300 --conns 8 --n "$n" >/dev/null 2>&1
done
a=$(sed -n 's/^summary: //p' "$out/cg.$n1")
b=$(sed -n 's/^summary: //p' "$out/cg.$n2")
echo "$("$node" --version) $protocol $target: $(( (b - a) / (n2 - n1) )) instructions/connection (Ir $a at n=$n1, $b at n=$n2)"
rm -rf "$out"
