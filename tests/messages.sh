#!/bin/sh
# What vaec prints must be true (issue 26): each check here is a defect a user
# met, which must not come back.
. "${top_srcdir:-.}/tests/lib.sh"
mix="$top_srcdir/examples/mixture_analytic.vae"

# gradvar: an error in the third item of --estimators names its column in the list and shows a caret
"$vaec" gradvar "$mix" --params "$work/none" --estimators 'analytic,uniform(samples: 2),reparam' >"$work/out" 2>"$work/err"
[ $? -eq 1 ] || fail "gradvar with a bad estimator should exit 1"
cat "$work/err"
grep -q '^--estimators:1:30: error: estimator .reparam. does not apply' "$work/err" || fail "gradvar's error is not at column 30"
[ "$(sed -n 3p "$work/err" | awk '{ print index($0, "^") }')" -eq 34 ] || fail "no caret under column 30 (4 spaces of indent)"
# an item longer than 255 characters is read whole (it was cut without a word)
pad=$(printf '%300s' '')
"$vaec" gradvar "$mix" --params "$work/none" --estimators "analytic,reinforce(samples: 2,$pad bogus: 1)" 2>"$work/err"
col=$(( ${#pad} + 32 ))
grep -q "^--estimators:1:$col: error: estimator 'reinforce' has no option 'bogus'" "$work/err" \
    || { cat "$work/err"; fail "a long --estimators item was not read whole (expected column $col)"; }

# an estimator that does not train the encoder: check warns, and evaluation leaves the encoder out
cat >"$work/prior_enc.vae" <<'MODEL'
model prior_enc
data x[784] : binary
latent z ~ categorical(4)
encoder q(z | x) {
    return categorical(logits: dense(x, 4))
}
decoder p(x | z) {
    return bernoulli(logits: dense(onehot(z), 784))
}
estimator prior(samples: 4)
train {
    data = "fashion-mnist:train"
    test = "fashion-mnist:test"
    batch = 64
}
MODEL
"$vaec" check "$work/prior_enc.vae" >"$work/out" 2>"$work/err" || fail "check refused a valid model"
grep -q "warning: estimator 'prior' does not use the encoder of 'z'" "$work/err" || fail "check did not say the encoder goes unused"
"$vaec" train "$work/prior_enc.vae" --epochs 1 --limit 128 --test-limit 64 --out "$work/pe" >"$work/out" 2>&1 \
    || { cat "$work/out"; fail "training prior_enc failed"; }
grep -q "test log p(x)" "$work/out" || { cat "$work/out"; fail "prior's test value should be log p(x), not an ELBO through an untrained encoder"; }
grep -q "test ELBO" "$work/out" && fail "prior's epoch line reports a test ELBO"
# the run's folder holds a TensorBoard event file (its format: tests/test_tfevents.c)
set -- "$work"/pe/events.out.tfevents.*
[ -s "$1" ] || fail "no TensorBoard event file in the run's folder"
grep -q "epoch/test_log_p_x" "$1" || fail "the event file has no epoch/test_log_p_x scalar"

# gradvar measures the model's own estimator as written, options included (the name alone drops them)
"$vaec" gradvar "$work/prior_enc.vae" --params "$work/pe/checkpoint.vaeckpt" --repeats 2 --batch 16 >"$work/out" 2>&1 \
    || { cat "$work/out"; fail "gradvar on prior_enc failed"; }
grep -q "^prior(samples: 4) " "$work/out" || { cat "$work/out"; fail "gradvar's default is not the estimator as written"; }
# options a command would ignore are refused
"$vaec" emit-c "$work/prior_enc.vae" -o "$work/pe.c" --seed 3 2>"$work/err" && fail "emit-c accepted --seed"
grep -q "unknown option '--seed'" "$work/err" || fail "emit-c --seed: no message"

# in a pipe, what stdout said comes before the error that followed it
"$vaec" train "$top_srcdir/examples/fashion_gauss.vae" --data "$work/missing.csv" --epochs 1 >"$work/both" 2>&1
[ $? -eq 1 ] || fail "training on a missing file should exit 1"
first=$(head -n 1 "$work/both")
case "$first" in compiled*) ;; *) cat "$work/both"; fail "the error came before the 'compiled' line";; esac

# an unknown option as the last argument is unknown, not missing its value; a known one is missing it
"$vaec" train "$top_srcdir/examples/fashion_gauss.vae" --bogus 2>"$work/err" && fail "--bogus was accepted"
grep -q "unknown option '--bogus'" "$work/err" || { cat "$work/err"; fail "--bogus last was not called unknown"; }
"$vaec" train "$top_srcdir/examples/fashion_gauss.vae" --lr 2>"$work/err" && fail "--lr without a value was accepted"
grep -q -- "--lr needs a value" "$work/err" || { cat "$work/err"; fail "--lr last did not say it needs a value"; }

# the build: ar is asked only for what it does (no "'u' modifier ignored" three times)
grep -q '^ARFLAGS = cr$' "$top_builddir/Makefile" || fail "ARFLAGS is not 'cr'"
echo "messages: all checks passed"
