#!/bin/sh
# Numerical faults are stopped and named (runtime/train.c, before_update):
#  - a zero scale: stopped at step 1, naming the reconstruction term, the
#    tensors whose gradient went bad and the likely cause; no checkpoint;
#  - a learning rate that makes the objective explode (huge but finite values
#    exited 0 before): stopped, blaming the learning rate;
#  - a fault in epoch 2 keeps epoch 1's checkpoint and log row as they were.
. "${top_srcdir:-.}/tests/lib.sh"
model="$top_srcdir/examples/fashion_gauss.vae"
SMALL="--data fashion-mnist:test --test-limit 20 --jit quick"

expect_fault() { # name expected-text...
    name=$1
    shift
    [ $rc -eq 1 ] || { cat "$work/$name.out"; fail "$name: exited with $rc, expected 1"; }
    for want in "$@"; do
        grep -qF -- "$want" "$work/$name.out" || { cat "$work/$name.out"; fail "$name: did not say '$want'"; }
    done
}

# a normal likelihood whose scale is a parameter, which starts at zero
sed 's|return bernoulli(logits: dense(h, 784))|return normal(mean: dense(h, 784), scale: param[784])|' "$model" >"$work/zero.vae"
"$vaec" train "$work/zero.vae" $SMALL --limit 256 --epochs 1 --out "$work/zero" >"$work/zero.out" 2>&1
rc=$?
expect_fault zero "training stopped at step 1 (epoch 1, batch 1 of 2): the objective (ELBO) is" \
    "log p(x | z)     non-finite in 128 of 128 rows" "KL               finite" \
    "last 'decoder.scale'" "zero scale" "not the learning rate" "no checkpoint was written"
[ -e "$work/zero/checkpoint.vaeckpt" ] && fail "zero: a checkpoint was written"
[ "$(grep -vc '^#' "$work/zero/log.csv")" -eq 1 ] || fail "zero: log.csv holds rows"

# a learning rate of 1000: the ELBO reaches -1e22 at step 2
"$vaec" train "$model" $SMALL --limit 256 --epochs 1 --lr 1000 --out "$work/lr" >"$work/lr.out" 2>&1
rc=$?
expect_fault lr "training stopped at step 2 (epoch 1, batch 2 of 2): the objective (ELBO) exploded to" \
    "the bound is 1e+10 nats" "too high a learning rate"

# one batch an epoch at lr 3: epoch 1 ends at -552 nats, epoch 2's step explodes
"$vaec" train "$model" $SMALL --limit 128 --epochs 3 --lr 3 --out "$work/late" >"$work/late.out" 2>&1
rc=$?
expect_fault late "training stopped at step 2 (epoch 2, batch 1 of 1)" \
    "kept             $work/late/checkpoint.vaeckpt (epoch 1), the last good checkpoint"
"$vaec" train "$model" $SMALL --limit 128 --epochs 1 --lr 3 --out "$work/one" >"$work/one.out" 2>&1 \
    || { cat "$work/one.out"; fail "one epoch at lr 3"; }
cmp "$work/late/checkpoint.vaeckpt" "$work/one/checkpoint.vaeckpt" || fail "late: the kept checkpoint is not epoch 1's"
[ "$(grep -vc '^#' "$work/late/log.csv")" -eq 2 ] || fail "late: log.csv should hold epoch 1's row only"
echo "faults: all checks passed"
