#!/bin/sh
# End to end, through the command line, on the real Fashion-MNIST:
#  - a short training run whose test ELBO must beat a threshold that a wrong
#    gradient cannot reach (the untrained model sits near -545 nats; two epochs
#    on 12,800 images reach about -180);
#  - eval of the checkpoint reproduces the training run's test ELBO, and the
#    IWAE estimate of log p(x) lies above the ELBO;
#  - bad data, checkpoints and options end in a clear message and status 1.
. "${top_srcdir:-.}/tests/lib.sh"
model="$top_srcdir/examples/fashion_gauss.vae"

"$vaec" train "$model" --epochs 2 --limit 12800 --test-limit 2000 --seed 7 --out "$work/run" >"$work/train.out" 2>&1 \
    || { cat "$work/train.out"; fail "vaec train exited with $?"; }
cat "$work/train.out"
[ -s "$work/run/checkpoint.vaeckpt" ] || fail "no checkpoint written"
[ "$(grep -vc '^#' "$work/run/log.csv")" -eq 3 ] || fail "log.csv should have a header and 2 epochs"
grep -q "^compiled fashion_gauss in" "$work/train.out" || fail "compile time not reported"
elbo=$(tail -n 1 "$work/run/log.csv" | cut -d, -f4)
echo "test ELBO after 2 short epochs: $elbo"
awk -v e="$elbo" 'BEGIN { exit !(e > -195) }' || fail "test ELBO $elbo does not beat -195: the gradient is wrong"

"$vaec" eval "$model" --params "$work/run/checkpoint.vaeckpt" --test-limit 2000 --seed 7 --iwae 20 >"$work/eval.out" 2>&1 \
    || { cat "$work/eval.out"; fail "vaec eval exited with $?"; }
cat "$work/eval.out"
eval_elbo=$(awk '/^ELBO/ { print $2 }' "$work/eval.out")
logpx=$(awk '/^log p\(x\)/ { print $3 }' "$work/eval.out")
awk -v a="$elbo" -v b="$eval_elbo" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d < 0.01) }' \
    || fail "eval's ELBO $eval_elbo differs from training's $elbo"
awk -v l="$logpx" -v e="$eval_elbo" 'BEGIN { exit !(l > e) }' || fail "IWAE log p(x) $logpx is not above the ELBO $eval_elbo"

# the discrete mixture model: analytic (exact log p(x) >= ELBO) and the REINFORCE example as written
mix="$top_srcdir/examples/mixture_analytic.vae"
"$vaec" train "$mix" --epochs 1 --limit 6400 --test-limit 1000 --out "$work/mix" >"$work/mix.out" 2>&1 \
    || { cat "$work/mix.out"; fail "vaec train $mix exited with $?"; }
cat "$work/mix.out"
line=$(tail -n 1 "$work/mix/log.csv")
mix_elbo=$(echo "$line" | cut -d, -f4)
mix_logpx=$(echo "$line" | cut -d, -f7)
awk -v e="$mix_elbo" 'BEGIN { exit !(e > -360) }' || fail "mixture test ELBO $mix_elbo does not beat -360"
awk -v e="$mix_elbo" -v l="$mix_logpx" 'BEGIN { exit !(l >= e) }' || fail "exact log p(x) $mix_logpx below the ELBO $mix_elbo"
"$vaec" train "$top_srcdir/examples/fashion_mixture.vae" --data fashion-mnist:train --test fashion-mnist:test \
    --epochs 1 --limit 1280 --test-limit 500 --out "$work/fm" >"$work/fm.out" 2>&1 || { cat "$work/fm.out"; fail "fashion_mixture"; }
"$vaec" gradvar "$top_srcdir/examples/fashion_mixture.vae" --params "$work/fm/checkpoint.vaeckpt" --data fashion-mnist:test \
    --repeats 3 --batch 32 --estimators "analytic,reinforce(samples: 2, baseline: b)" >"$work/gv.out" 2>&1 \
    || { cat "$work/gv.out"; fail "vaec gradvar exited with $?"; }
cat "$work/gv.out"
grep -q "^reinforce(samples: 2, baseline: b) " "$work/gv.out" || fail "gradvar printed no row for reinforce"
awk '$1 == "analytic" { exit !($2 == 0) }' "$work/gv.out" || fail "the analytic gradient should have no variance"
# gradvar covers every estimator that applies, its tensors taken from the checkpoint by name: those an
# estimator adds that the checkpoint lacks (rebar's eta and temperature, nvil's running statistics)
# start at their initial values, and the output names them
gv_rows() { # out-file rows: every row of the table has a finite, positive variance (4th field from the end)
    awk -v want="$2" 'seen { n++; v = $(NF - 3); if (v !~ /^[0-9.e+-]+$/ || !(v + 0 > 0)) { print "bad variance: " $0; bad = 1 } }
        /^estimator / { seen = 1 } END { if (n != want) print n " rows, expected " want; exit bad || n != want }' "$1"
}
relax="$top_srcdir/examples/fashion_bernoulli200_relax.vae"
"$vaec" train "$relax" --epochs 1 --limit 500 --test-limit 100 --out "$work/relax" >"$work/relax.out" 2>&1 \
    || { cat "$work/relax.out"; fail "training $relax"; }
"$vaec" gradvar "$relax" --params "$work/relax/checkpoint.vaeckpt" --repeats 3 --batch 16 \
    --estimators 'disarm,arm,relax(control: c),rebar(temperature: 0.5),reinforce(samples: 2, baseline: loo),disarm(samples: 2),vimco(samples: 2)' \
    >"$work/gv.out" 2>&1 || { cat "$work/gv.out"; fail "gradvar on the relax example exited with $?"; }
cat "$work/gv.out"
gv_rows "$work/gv.out" 7 || fail "gradvar on the relax example: not a finite positive variance on every row"
grep -q '^note: rebar.eta, rebar.log_temperature (rebar(temperature: 0.5)): not in the checkpoint, so measured at their initial values' \
    "$work/gv.out" || fail "gradvar did not name rebar's tensors as initialised"
[ "$(grep -c '^note: ' "$work/gv.out")" -eq 1 ] || fail "gradvar noted tensors the checkpoint has (relax's trained control)"
nvil="$top_srcdir/examples/mixture_nvil.vae"
"$vaec" train "$nvil" --estimator 'sum_and_sample(k: 3)' --epochs 1 --limit 500 --test-limit 100 --out "$work/nvil" \
    >"$work/nvil.out" 2>&1 || { cat "$work/nvil.out"; fail "training $nvil with sum_and_sample"; }
"$vaec" gradvar "$nvil" --params "$work/nvil/checkpoint.vaeckpt" --repeats 3 --batch 16 \
    --estimators 'nvil(baseline: b),sum_and_sample(k: 3)' >"$work/gv.out" 2>&1 \
    || { cat "$work/gv.out"; fail "gradvar on the nvil example exited with $?"; }
cat "$work/gv.out"
gv_rows "$work/gv.out" 2 || fail "gradvar on the nvil example: not a finite positive variance on every row"
grep -q '^note: nvil.mean, nvil.variance (nvil(baseline: b)): not in the checkpoint' "$work/gv.out" \
    || fail "gradvar did not name nvil's running statistics as initialised"
# a checkpoint tensor of another shape, and one of the model's own missing, are errors naming it
sed 's/dense(x, 512)/dense(x, 500)/' "$nvil" >"$work/nvil500.vae"
"$vaec" gradvar "$work/nvil500.vae" --params "$work/nvil/checkpoint.vaeckpt" --repeats 2 >"$work/out" 2>&1 && fail "gradvar took a tensor of another shape"
grep -q "tensor 'encoder.h.weight' is \[784, 512\] in the checkpoint, \[784, 500\] here" "$work/out" || { cat "$work/out"; fail "gradvar's shape error"; }
awk '{ print } /h = relu\(dense\(h, 512\)\)/ { print }' "$nvil" >"$work/nvil3.vae" # a third hidden layer in the decoder
"$vaec" gradvar "$work/nvil3.vae" --params "$work/nvil/checkpoint.vaeckpt" --repeats 2 >"$work/out" 2>&1 && fail "gradvar took a checkpoint without a decoder tensor"
grep -q "has no tensor 'decoder.h#3.weight'" "$work/out" || { cat "$work/out"; fail "gradvar's missing-tensor error"; }

# gradvar reads binary(dynamic) data as evaluation does (one fixed draw), not thresholded at half the
# range: the same checkpoint and noise on the model declared binary give another variance
bern="$top_srcdir/examples/fashion_bernoulli200.vae"
sed 's/binary(dynamic)/binary/' "$bern" >"$work/bern_static.vae"
"$vaec" train "$bern" --epochs 0 --out "$work/bern" >"$work/bern.out" 2>&1 || { cat "$work/bern.out"; fail "bernoulli200 --epochs 0"; }
for m in "$bern" "$work/bern_static.vae"; do
    "$vaec" gradvar "$m" --params "$work/bern/checkpoint.vaeckpt" --repeats 3 --batch 8 >>"$work/gvb.out" 2>&1 \
        || { cat "$work/gvb.out"; fail "vaec gradvar $m exited with $?"; }
done
cat "$work/gvb.out"
grep -q "from fashion-mnist:train (binarised by one fixed draw, as evaluation)$" "$work/gvb.out" \
    || fail "gradvar does not say that it draws a binary(dynamic) batch"
[ "$(awk '$1 == "disarm" { print $2 }' "$work/gvb.out" | sort -u | wc -l)" -eq 2 ] \
    || fail "gradvar measured binary(dynamic) data on the thresholded batch"

# the JIT's three modes (quick code, optimised code, and quick code swapped for
# optimised code mid-run) must train to bit-identical parameters
for ex in fashion_gauss fashion_iwae5 mixture_reinforce mixture_gumbel_hard; do
    for jit in quick optimized tiered; do
        "$vaec" train "$top_srcdir/examples/$ex.vae" --jit $jit --epochs 1 --limit 1280 --test-limit 100 \
            --out "$work/jit-$jit" --force >"$work/jit.out" 2>&1 || { cat "$work/jit.out"; fail "$ex --jit $jit"; }
    done
    cmp "$work/jit-quick/checkpoint.vaeckpt" "$work/jit-optimized/checkpoint.vaeckpt" \
        || fail "$ex: --jit quick and --jit optimized trained to different parameters"
    cmp "$work/jit-tiered/checkpoint.vaeckpt" "$work/jit-optimized/checkpoint.vaeckpt" \
        || fail "$ex: --jit tiered and --jit optimized trained to different parameters"
done
echo "JIT modes: quick, optimized and tiered give bit-identical checkpoints"

# the thread team cuts products and Adam into blocks without changing any sum's
# order: one thread and two train to the same bits
for t in 1 2; do
    "$vaec" train "$model" --threads $t --epochs 1 --limit 2560 --test-limit 100 --out "$work/threads-$t" \
        >"$work/threads.out" 2>&1 || { cat "$work/threads.out"; fail "--threads $t"; }
done
cmp "$work/threads-1/checkpoint.vaeckpt" "$work/threads-2/checkpoint.vaeckpt" \
    || fail "--threads 1 and --threads 2 trained to different parameters"
# the convolutions' data movement (im2col, col2im, transposes) is shared by examples too
for t in 1 2; do
    "$vaec" train "$top_srcdir/examples/fashion_conv.vae" --threads $t --epochs 1 --limit 640 --test-limit 100 \
        --out "$work/conv-threads-$t" >"$work/threads.out" 2>&1 || { cat "$work/threads.out"; fail "fashion_conv --threads $t"; }
done
cmp "$work/conv-threads-1/checkpoint.vaeckpt" "$work/conv-threads-2/checkpoint.vaeckpt" \
    || fail "fashion_conv: --threads 1 and --threads 2 trained to different parameters"
echo "threads: 1 and 2 give bit-identical checkpoints (fashion_gauss, fashion_conv)"

# bad input: a clear message, status 1
expect_error() { # expected-text command...
    want=$1
    shift
    "$@" >"$work/out" 2>&1
    rc=$?
    [ $rc -eq 1 ] || { cat "$work/out"; fail "'$*' exited with $rc, expected 1"; }
    grep -q -- "$want" "$work/out" || { cat "$work/out"; fail "'$*' did not say '$want'"; }
}
expect_error "$work/none.idx: cannot open" "$vaec" train "$model" --data "$work/none.idx" --epochs 1 --out "$work/r2"
printf 'not idx' >"$work/bad.idx"
expect_error "$work/bad.idx: not an IDX file" "$vaec" train "$model" --data "$work/bad.idx" --epochs 1 --out "$work/r2"
sed 's/dense(x, 400)/dense(x, 300)/' "$model" >"$work/other.vae"
expect_error "does not fit this model: tensor 1 is 'encoder.h.weight' \[784, 400\] in the checkpoint, 'encoder.h.weight' \[784, 300\] here" \
    "$vaec" eval "$work/other.vae" --params "$work/run/checkpoint.vaeckpt" --iwae 0
expect_error "not a vaec checkpoint" "$vaec" eval "$model" --params "$work/bad.idx"
expect_error "--epochs expects an integer" "$vaec" train "$model" --epochs many
expect_error "unknown option '--epoch'" "$vaec" train "$model" --epoch 3
expect_error "--jit expects tiered, optimized or quick" "$vaec" train "$model" --jit fast
expect_error "no model file given" "$vaec" train
expect_error "cannot open the model" "$vaec" check "$work/missing.vae"
expect_error "unknown command 'fit'" "$vaec" fit "$model"

"$vaec" emit-llvm "$model" -o "$work/m.ll" || fail "emit-llvm failed"
grep -q "define void @vae_train_step" "$work/m.ll" || fail "emit-llvm: no training step in the module"
grep -q "vr_gemm_f32" "$work/m.ll" || fail "emit-llvm: matrix products do not call the runtime"
"$vaec" --help | grep -q "emit-llvm" || fail "vaec --help"
"$vaec" train --help | grep -q -- "--epochs" || fail "vaec train --help"
echo "e2e: all checks passed"
