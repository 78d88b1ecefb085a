#!/bin/sh
# The model file's settings are refused as the command line's options are: for
# each bad value, `vaec check` on a model that sets it must fail at the place
# with "'NAME' must be WORDS" and `vaec train --NAME VALUE` with "--NAME expects
# WORDS, got 'VALUE'", WORDS the same (one table: parser/settings.c).
. "${top_srcdir:-.}/tests/lib.sh"
status=0

# NAME, the line in the train block, the option's value[, the option's name when not NAME]
check_setting() {
    name=$1 line=$2 value=$3 option=${4:-$1}
    cat >"$work/m.vae" <<MODEL
model m
data x[4] : binary
latent z[2] ~ normal(0, 1)
encoder q(z | x) {
    return normal(mean: dense(x, 2), logvar: dense(x, 2))
}
decoder p(x | z) {
    return bernoulli(logits: dense(z, 4))
}
estimator reparam
train {
    $line
}
MODEL
    "$vaec" check "$work/m.vae" >/dev/null 2>"$work/model.err" && { echo "FAIL $name: '$line' accepted"; status=1; return; }
    "$vaec" train "$work/m.vae" "--$option" "$value" >/dev/null 2>"$work/option.err" \
        && { echo "FAIL $name: --$option $value accepted"; status=1; return; }
    model_words=$(sed -n "s/^.*m.vae:12:[0-9]*: error: '$name' must be \(.*\)$/\1/p" "$work/model.err")
    option_words=$(sed -n "s/^vaec: error: --$option expects \(.*\), got '.*'$/\1/p" "$work/option.err")
    if [ -z "$model_words" ] || [ "$model_words" != "$option_words" ]; then
        echo "FAIL $name: the model says '$model_words', the option '$option_words'"
        cat "$work/model.err" "$work/option.err"
        status=1
    else
        echo "ok   $name ($line | --$option $value): $model_words"
    fi
}

check_setting lr "optimizer = adam(lr: 1e999)" inf
check_setting lr "optimizer = adam(lr: nan)" nan
check_setting lr "optimizer = sgd(lr: 0)" 0
check_setting epochs "epochs = -1" -1
check_setting epochs "epochs = 2000000" 2000000
check_setting batch "batch = 0" 0
check_setting batch "batch = -5" -5
check_setting batch "batch = 100000" 100000
check_setting seed "seed = -1" -1
check_setting warmup "warmup = 1e999" inf
check_setting shards "shards = 0" 0
check_setting shards "shards = 2.5" 2.5
check_setting validation "validation = -1" -1
check_setting validation "validation = 0.5" 0.5
check_setting clip "clip = 0" 0
check_setting clip "clip = 1e999" inf
check_setting lr_warmup_steps "lr_warmup_steps = 1.5" 1.5 lr-warmup-steps
check_setting lr_step_epochs "lr_step_epochs = 0" 0 lr-step-epochs
check_setting lr_step_factor "lr_step_factor = 0" 0 lr-step-factor
check_setting lr_step_factor "lr_step_factor = 1.5" 1.5 lr-step-factor
check_setting lr_cosine_epochs "lr_cosine_epochs = 0" 0 lr-cosine-epochs
check_setting lr_min "lr_min = -1" -1 lr-min
exit $status
