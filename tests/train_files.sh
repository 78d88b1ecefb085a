#!/bin/sh
# What a run writes, and what it refuses to write over (runtime/train.c run_files,
# runtime/checkpoint.c vr_output), and issue 26's output items:
#  - a second run never touches the first: runs/MODEL, then runs/MODEL-2; an
#    --out folder holding a run is refused unless --force;
#  - a symbolic link, a device or a folder given as an output is refused by
#    name, before training, and left as it was;
#  - eval refuses a folder as --params; --epochs 0 writes the initial parameters;
#  - eval prints log p(x) once for `exact`, no KL gap for K = 1, no standard error
#    for one example; log.csv's columns are identifiers; "1 epoch".
. "${top_srcdir:-.}/tests/lib.sh"
top_srcdir=$(cd "${top_srcdir:-.}" && pwd)
model="$top_srcdir/examples/fashion_gauss.vae"
SMALL="--data fashion-mnist:test --limit 256 --test-limit 20 --jit quick"
expect_error() { # expected-text command...
    want=$1
    shift
    "$@" >"$work/err.out" 2>&1
    rc=$?
    [ $rc -eq 1 ] || { cat "$work/err.out"; fail "'$*' exited with $rc, expected 1"; }
    grep -qF -- "$want" "$work/err.out" || { cat "$work/err.out"; fail "'$*' did not say '$want'"; }
    if grep -q "^epoch" "$work/err.out"; then cat "$work/err.out"; fail "'$*' trained before refusing"; fi
}

# a second run with the default folder goes to runs/MODEL-2; the first is untouched
cd "$work" || fail "cd"
"$vaec" train "$model" $SMALL --epochs 1 >"$work/a.out" 2>&1 || { cat "$work/a.out"; fail "first run"; }
grep -q "1 epoch, adam" "$work/a.out" || { cat "$work/a.out"; fail "the training line does not say '1 epoch'"; }
sum1=$(cat runs/fashion_gauss/* | cksum)
"$vaec" train "$model" $SMALL --epochs 1 >"$work/b.out" 2>&1 || { cat "$work/b.out"; fail "second run"; }
grep -q "wrote runs/fashion_gauss-2/checkpoint.vaeckpt" "$work/b.out" || { cat "$work/b.out"; fail "second run not in runs/fashion_gauss-2"; }
[ "$(cat runs/fashion_gauss/* | cksum)" = "$sum1" ] || fail "the second run changed the first run's files"
expect_error "runs/fashion_gauss: holds an earlier run" "$vaec" train "$model" $SMALL --epochs 1 --out runs/fashion_gauss
[ "$(cat runs/fashion_gauss/* | cksum)" = "$sum1" ] || fail "a refused run changed the first run's files"
"$vaec" train "$model" $SMALL --epochs 1 --seed 3 --out runs/fashion_gauss --force >"$work/c.out" 2>&1 \
    || { cat "$work/c.out"; fail "--force"; }
[ "$(cat runs/fashion_gauss/* | cksum)" = "$sum1" ] && fail "--force did not replace the run"
[ "$(grep -vc '^#' runs/fashion_gauss/log.csv)" -eq 2 ] || fail "--force: log.csv should hold one run's row"

# outputs that are not regular files: refused by name, before training, and kept
touch "$work/target"
ln -s "$work/target" "$work/link.ll"
mkdir "$work/dir.c" "$work/linked"
expect_error "$work/link.ll: is a symbolic link" "$vaec" emit-llvm "$model" -o "$work/link.ll"
[ -L "$work/link.ll" ] && [ ! -s "$work/target" ] || fail "emit-llvm replaced the link or wrote through it"
expect_error "/dev/null: is a device" "$vaec" emit-llvm "$model" -o /dev/null
[ -c /dev/null ] || fail "/dev/null is no longer a device"
expect_error "$work/dir.c: is a folder" "$vaec" emit-c "$model" -o "$work/dir.c"
expect_error "/dev/null: cannot be the output folder" "$vaec" train "$model" $SMALL --epochs 1 --out /dev/null
expect_error "$work/target: cannot be the output folder" "$vaec" train "$model" $SMALL --epochs 1 --out "$work/target"
ln -s "$work/target" "$work/linked/checkpoint.vaeckpt"
expect_error "$work/linked/checkpoint.vaeckpt: is a symbolic link" \
    "$vaec" train "$model" $SMALL --epochs 1 --out "$work/linked" --force
[ -L "$work/linked/checkpoint.vaeckpt" ] || fail "the checkpoint link was replaced"
expect_error "cannot create the output folder" "$vaec" train "$model" $SMALL --epochs 1 --out /proc/vaec-out
ls "$work" | grep -q tmp && { ls "$work"; fail "a refused output left a temporary file"; }

# eval: a folder as --params; the initial parameters of --epochs 0
expect_error "runs: is a folder, not a checkpoint file" "$vaec" eval "$model" --params runs --iwae 0
"$vaec" train "$model" $SMALL --epochs 0 --out "$work/init" >"$work/init.out" 2>&1 || { cat "$work/init.out"; fail "--epochs 0"; }
grep -q "wrote the initial parameters to $work/init/checkpoint.vaeckpt" "$work/init.out" || { cat "$work/init.out"; fail "--epochs 0: no message"; }
"$vaec" eval "$model" --params "$work/init/checkpoint.vaeckpt" --test-limit 1 --iwae 1 --jit quick >"$work/e1.out" 2>&1 \
    || { cat "$work/e1.out"; fail "eval of the initial parameters"; }
grep -q "^KL gap" "$work/e1.out" && { cat "$work/e1.out"; fail "--iwae 1 printed a KL gap"; }
grep -q "one-sample estimate of the ELBO" "$work/e1.out" || { cat "$work/e1.out"; fail "--iwae 1: not said"; }
grep -q "+-" "$work/e1.out" && { cat "$work/e1.out"; fail "--test-limit 1 printed a standard error"; }
grep -q "standard error is unknown" "$work/e1.out" || { cat "$work/e1.out"; fail "--test-limit 1: not said"; }

# exact: log p(x) printed once
exact="$top_srcdir/examples/mixture_exact.vae"
"$vaec" train "$exact" $SMALL --epochs 0 --out "$work/exact" >/dev/null 2>&1 || fail "mixture_exact --epochs 0"
"$vaec" eval "$exact" --params "$work/exact/checkpoint.vaeckpt" --test-limit 20 --jit quick >"$work/ex.out" 2>&1 \
    || { cat "$work/ex.out"; fail "eval mixture_exact"; }
[ "$(grep -c '^log p(x)' "$work/ex.out")" -eq 1 ] || { cat "$work/ex.out"; fail "exact: log p(x) not printed once"; }

# log.csv's columns are plain identifiers (fashion_iwae5 reports an "IWAE bound")
"$vaec" train "$top_srcdir/examples/fashion_iwae5.vae" $SMALL --epochs 0 --out "$work/iwae" >/dev/null 2>&1 || fail "iwae5"
grep -v '^#' "$work/iwae/log.csv" | head -n 1 | tr , '\n' | grep -qv '^[A-Za-z_][A-Za-z0-9_]*$' \
    && fail "log.csv's header has a column that is not an identifier: $(grep -v '^#' "$work/iwae/log.csv" | head -n 1)"
grep -q "train_IWAE_bound" "$work/iwae/log.csv" || fail "log.csv's header: $(grep -v '^#' "$work/iwae/log.csv" | head -n 1)"
echo "train_files: all checks passed"
