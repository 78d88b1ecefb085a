#!/bin/sh
# Data-parallel training on this machine (docs/cluster.md has the results and the cost model):
#  1. the per-shard product slow-down: one process of 1 thread, --shards S for S = 1, 2, 4, 8;
#  2. 2 processes of 1 thread (mpirun) against 1 process of 2 threads, the same S;
#  3. the exchange (MPI_Allgather of the gradients, and the tree sum) per step against the step.
# Examples per second are the last epoch's (the first includes the JIT's optimisation).
# usage: bench/mpi.sh [BUILD_DIR] [MODEL]   (env: LIMIT=8192 EPOCHS=3 BATCH=128)
set -e
build=${1:-build}
model=${2:-examples/fashion_gauss.vae}
vaec="$(cd "$build" && pwd)/vaec"
LIMIT=${LIMIT:-8192}
EPOCHS=${EPOCHS:-3}
BATCH=${BATCH:-128}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=""
[ "$(id -u)" = 0 ] && root="--allow-run-as-root"
ARGS="--data fashion-mnist:train --limit $LIMIT --epochs $EPOCHS --batch $BATCH"
params=$("$vaec" check "$model" | awk '$1 == "parameters" { print $2 }')
echo "model $(basename "$model" .vae): $params parameters, $((params * 4)) gradient bytes a step; batch $BATCH"
# the last epoch line's "step only N ex/s" and, under mpirun, "exchange M ms a step"
rate() { grep '^epoch' "$1" | tail -n 1 | sed 's/.*step only \([0-9]*\) ex\/s.*/\1/'; }
exchange() { grep '^epoch' "$1" | tail -n 1 | sed -n 's/.*exchange \([0-9.]*\) ms a step.*/\1/p'; }

echo "1. one process, 1 thread: examples/s by shards (slow-down against S = 1)"
for S in 1 2 4 8; do
    "$vaec" train "$model" $ARGS --threads 1 --shards $S --out "$work/s$S" >"$work/s$S.out"
    r=$(rate "$work/s$S.out")
    [ $S = 1 ] && r1=$r
    echo "   S = $S  $r ex/s  slow-down x$(echo "$r1 $r" | awk '{ printf "%.2f", $1 / $2 }')"
done
echo "2./3. the same shards on 2 cores: 1 process of 2 threads, 2 processes of 1 thread"
for S in 2 4; do
    "$vaec" train "$model" $ARGS --threads 2 --shards $S --out "$work/t$S" >"$work/t$S.out"
    mpirun $root --oversubscribe -np 2 "$vaec" train "$model" $ARGS --threads 1 --shards $S --out "$work/m$S" \
        >"$work/m$S.out" 2>&1
    cmp -s "$work/t$S/checkpoint.vaeckpt" "$work/m$S/checkpoint.vaeckpt" && same="same bits" || same="BITS DIFFER"
    rt=$(rate "$work/t$S.out")
    rm=$(rate "$work/m$S.out")
    ex=$(exchange "$work/m$S.out")
    step=$(echo "$BATCH $rm" | awk '{ printf "%.2f", 1e3 * $1 / $2 }')
    echo "   S = $S  1x2 threads $rt ex/s   2x1 processes $rm ex/s   exchange $ex ms of a $step ms step  ($same)"
done
