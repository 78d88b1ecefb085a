#!/bin/sh
# vaec train's validation, clipping, learning-rate schedules, log.csv's header and progress line:
#  - log.csv's description: the model file's SHA-256 as sha256sum computes it, vaec's version,
#    a commit, each setting's source (command line, model file, default), the thread count and
#    the command line; a resume on another thread count and the resume of a log written before
#    the description existed both work (the description is never compared);
#  - --validation N: N examples held out of training, a valid_ELBO column, and best.vaeckpt
#    byte for byte the checkpoint of the epoch with the best validation ELBO (an epoch that is
#    worse leaves it alone);
#  - --clip: a bound larger than any gradient gives the bits of no clipping; a small one
#    clips every step and changes them;
#  - a step decay of factor 1 gives the bits of no schedule;
#  - 3 epochs with all of them on, or 1 then --resume to 2 then to 3 (another thread count),
#    give the same checkpoint, best.vaeckpt and log rows;
#  - a resume with a changed or a dropped setting is refused, naming it;
#  - no progress line when stdout is not a terminal; one with ETAs on a terminal.
. "${top_srcdir:-.}/tests/lib.sh"
model="$top_srcdir/examples/fashion_gauss.vae"
SMALL="--limit 512 --test-limit 100 --jit quick"

train() { # DIR ARGS...: a run into DIR that must succeed
    dir=$1
    shift
    "$vaec" train "$model" $SMALL "$@" --out "$dir" >"$work/out" 2>&1 || { cat "$work/out"; fail "vaec train $* exited with $?"; }
}
resume() { # DIR ARGS...
    dir=$1
    shift
    "$vaec" train "$model" $SMALL "$@" --resume "$dir" >"$work/out" 2>&1 || { cat "$work/out"; fail "--resume $dir $* exited with $?"; }
}
refused() { # WHAT EXPECTED-MESSAGE ARGS...: a run that must fail with the message
    what=$1 expect=$2
    shift 2
    "$vaec" train "$model" $SMALL "$@" >"$work/out" 2>&1 && { cat "$work/out"; fail "$what: accepted"; }
    grep -qF -- "$expect" "$work/out" || { cat "$work/out"; fail "$what: the message does not say '$expect'"; }
}
header() { # DIR KEY: the value of log.csv's "# KEY = VALUE" line
    sed -n "s/^# $2 = //p" "$1/log.csv"
}
rows() { grep -v '^#' "$1/log.csv" | rev | cut -d, -f3- | rev; } # without the two time columns (the last)
same_run() { # A B WHAT
    cmp "$1/checkpoint.vaeckpt" "$2/checkpoint.vaeckpt" || fail "$3: the checkpoints differ"
    rows "$1" >"$work/rows1"
    rows "$2" >"$work/rows2"
    diff "$work/rows1" "$work/rows2" || fail "$3: the log rows differ"
}

# ---- the description
train "$work/plain" --epochs 1 --lr 0.002 --threads 2
[ "$(header "$work/plain" 'model sha256')" = "$(sha256sum <"$model" | cut -d' ' -f1)" ] \
    || fail "the model's SHA-256 is not sha256sum's: $(header "$work/plain" 'model sha256')"
[ "$(header "$work/plain" 'model file')" = "$model" ] || fail "the model file is not named"
version=$("$vaec" --version | sed -n '1s/^vaec \([^ ]*\) .*/\1/p')
[ -n "$version" ] && [ "$(header "$work/plain" 'vaec version')" = "$version" ] || fail "the version is not vaec --version's"
[ -n "$(header "$work/plain" 'vaec commit')" ] || fail "no commit line"
header "$work/plain" started | grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$' || fail "no start time"
[ "$(header "$work/plain" 'setting lr')" = "0.002 (command line)" ] || fail "lr's source: $(header "$work/plain" 'setting lr')"
[ "$(header "$work/plain" 'setting batch')" = "128 (model file)" ] || fail "batch's source: $(header "$work/plain" 'setting batch')"
[ "$(header "$work/plain" 'setting seed')" = "0 (default)" ] || fail "seed's source: $(header "$work/plain" 'setting seed')"
[ "$(header "$work/plain" threads)" = 2 ] || fail "the thread count is not 2"
header "$work/plain" 'command line' | grep -q -- "train $model --limit 512 .* --threads 2 --out $work/plain$" \
    || fail "the command line: $(header "$work/plain" 'command line')"
for key in cpu 'matrix library'; do [ -n "$(header "$work/plain" "$key")" ] || fail "no '$key' line"; done
grep -q '^# validation\|^# clip\|^# lr warmup\|^# lr schedule' "$work/plain/log.csv" && fail "settings at their default have compared lines"
[ -e "$work/plain/best.vaeckpt" ] && fail "best.vaeckpt without validation"
cp -r "$work/plain" "$work/old" # a log from before the description: it still resumes
sed -i '/^# vaec version = /,/^# command line = /d' "$work/old/log.csv"
grep -q '^# setting' "$work/old/log.csv" && fail "the description was not removed"
resume "$work/old" --epochs 2 --lr 0.002 --threads 1
resume "$work/plain" --epochs 2 --lr 0.002 --threads 1
same_run "$work/plain" "$work/old" "a log without the description"
echo "ok   log.csv's description: SHA-256, version, commit, sources, threads, command line; not compared on resume"

# ---- validation and best.vaeckpt: at lr 0.03 epoch 2's validation ELBO is worse than epoch 1's
V="--validation 128 --lr 0.03"
train "$work/v2" $V --epochs 2
grep -q "training fashion_gauss on 384 examples" "$work/out" || { cat "$work/out"; fail "128 of 512 examples were not held out"; }
grep -q "^epoch,step,train_ELBO,test_ELBO,.*,valid_ELBO,kl_weight_factor" "$work/v2/log.csv" || fail "no valid_ELBO column"
set -- "$work"/v2/events.out.tfevents.*
grep -q "epoch/valid_elbo" "$1" || fail "the event file has no epoch/valid_elbo scalar"
train "$work/v1" $V --epochs 1
best=$(grep -v '^#' "$work/v2/log.csv" | awk -F, 'NR > 1 && (b == "" || $8 > b) { b = $8; e = $1 } END { print e }')
cmp "$work/v2/best.vaeckpt" "$work/v$best/checkpoint.vaeckpt" || fail "best.vaeckpt is not epoch $best's checkpoint"
if [ "$best" = 1 ]; then
    cmp -s "$work/v2/best.vaeckpt" "$work/v2/checkpoint.vaeckpt" && fail "a worse epoch replaced best.vaeckpt"
    echo "ok   --validation: best.vaeckpt is epoch 1's; epoch 2, worse, left it alone"
else
    echo "ok   --validation: best.vaeckpt is epoch $best's (note: no worse epoch with this library's bits)"
fi
refused "all held out" "validation = 512 leaves no training examples (512 in all after --limit)" --validation 512 --out "$work/x"

# ---- clipping and a constant step decay change no bit where they do nothing
train "$work/noclip" --epochs 1
train "$work/hugeclip" --epochs 1 --clip 1000000
same_run "$work/noclip" "$work/hugeclip" "--clip 1e6"
grep -q "clipped 0 of 4 steps" "$work/out" || { cat "$work/out"; fail "--clip 1e6 clipped"; }
train "$work/clip" --epochs 1 --clip 1
grep -q "clipped 4 of 4 steps" "$work/out" || { cat "$work/out"; fail "--clip 1 did not clip every step"; }
cmp -s "$work/noclip/checkpoint.vaeckpt" "$work/clip/checkpoint.vaeckpt" && fail "--clip 1 changed nothing"
train "$work/flat" --epochs 1 --lr-step-epochs 1 --lr-step-factor 1
cmp "$work/noclip/checkpoint.vaeckpt" "$work/flat/checkpoint.vaeckpt" || fail "a step decay of factor 1 changed the bits"
train "$work/cos" --epochs 1 --lr-cosine-epochs 1
cmp -s "$work/noclip/checkpoint.vaeckpt" "$work/cos/checkpoint.vaeckpt" && fail "a cosine decay changed nothing"
echo "ok   --clip 1e6 and a step decay of factor 1 keep the bits; --clip 1 and a cosine decay change them"

# ---- resume with everything on, on other thread counts
ALL="$V --clip 30 --lr-warmup-steps 5 --lr-cosine-epochs 3 --lr-min 0.0001"
train "$work/whole" $ALL --epochs 3
train "$work/part" $ALL --epochs 1 --threads 1
resume "$work/part" $ALL --epochs 2 --threads 2
resume "$work/part" $ALL --epochs 3 --threads 1
same_run "$work/whole" "$work/part" "all on: 3 epochs vs 1 + resume + resume"
grep -q "^# resumed after epoch 1: started = [0-9T:Z-]*, vaec commit = .*, threads = 2, cpu = .*, command line = .* --epochs 2 --threads 2 --resume $work/part$" \
    "$work/part/log.csv" || { cat "$work/part/log.csv"; fail "log.csv does not note the first resume"; }
grep -q "^# resumed after epoch 2: .*, threads = 1, " "$work/part/log.csv" || fail "log.csv does not note the second resume"
cmp "$work/whole/best.vaeckpt" "$work/part/best.vaeckpt" || fail "all on: best.vaeckpt differs after resumes"
grep -q '^# lr schedule = cosine(over 3 epochs, down to 0.0001)$' "$work/whole/log.csv" || fail "no schedule line"
train "$work/step" $V --lr-step-epochs 1 --lr-step-factor 0.5 --epochs 3
train "$work/steppart" $V --lr-step-epochs 1 --lr-step-factor 0.5 --epochs 1
resume "$work/steppart" $V --lr-step-epochs 1 --lr-step-factor 0.5 --epochs 3
same_run "$work/step" "$work/steppart" "step decay: 3 epochs vs 1 + resume"
cmp "$work/step/best.vaeckpt" "$work/steppart/best.vaeckpt" || fail "step decay: best.vaeckpt differs after a resume"
echo "ok   validation, clip, warm-up and decays on: a resumed run is byte for byte an uninterrupted one"

# ---- refusals of a resume that would compute something else
cp "$work/whole/checkpoint.vaeckpt" "$work/before"
refused "another clip" "clip: 30 in the run, 31 now" ${ALL% *} 0.0001 --clip 31 --epochs 4 --resume "$work/whole"
refused "no clip" "clip = 30 in the run, not set now" $V --lr-warmup-steps 5 --lr-cosine-epochs 3 --lr-min 0.0001 \
    --epochs 4 --resume "$work/whole"
refused "another schedule" "lr schedule: cosine(over 3 epochs, down to 0.0001) in the run, step(every 1 epochs, factor 0.5) now" \
    $V --clip 30 --lr-warmup-steps 5 --lr-step-epochs 1 --lr-step-factor 0.5 --epochs 4 --resume "$work/whole"
refused "validation added" "validation: not noted in the run, 128 now" --validation 128 --epochs 2 --resume "$work/noclip"
refused "two decays" "lr_step_epochs and lr_cosine_epochs" --lr-step-epochs 1 --lr-cosine-epochs 2 --out "$work/x2"
cmp "$work/before" "$work/whole/checkpoint.vaeckpt" || fail "a refused resume changed the checkpoint"
echo "ok   a resume with another clip, schedule or validation is refused, naming it"

# ---- the same settings in a model's train block: the source says so; two decays are refused at their place
sed 's/^    epochs = 10$/    epochs = 1\n    validation = 128\n    clip = 30\n    lr_warmup_steps = 5\n    lr_cosine_epochs = 3\n    lr_min = 0.0001/' \
    "$model" >"$work/block.vae"
grep -q 'lr_cosine_epochs = 3' "$work/block.vae" || fail "the train block was not edited"
"$vaec" train "$work/block.vae" $SMALL --lr 0.03 --out "$work/block" >"$work/out" 2>&1 || { cat "$work/out"; fail "train block settings"; }
[ "$(header "$work/block" 'setting clip')" = "30 (model file)" ] || fail "clip's source: $(header "$work/block" 'setting clip')"
[ "$(header "$work/block" 'setting lr_step_factor')" = "0.1 (default)" ] || fail "lr_step_factor's default"
train "$work/options1" $ALL --epochs 1
same_run "$work/block" "$work/options1" "the train block's settings against the options"
sed 's/^    lr_min = 0.0001$/    lr_step_epochs = 2/' "$work/block.vae" >"$work/two.vae"
"$vaec" check "$work/two.vae" >"$work/out" 2>&1 && fail "two decays in a train block accepted"
grep -q "two.vae:[0-9]*:[0-9]*: error: lr_step_epochs and lr_cosine_epochs: the learning rate decays one way" "$work/out" \
    || { cat "$work/out"; fail "two decays: no located message"; }
echo "ok   the train block's validation, clip and schedule: its source noted, the options' numbers; two decays refused"

# ---- the progress line: none in a file; on a terminal, with the ETAs
grep -q 'ETA' "$work/out" && fail "a progress line in a file"
if command -v script >/dev/null; then
    script -qec "'$vaec' train '$model' $SMALL --epochs 1 --out '$work/tty'" "$work/tty.out" >/dev/null 2>&1 \
        || { cat "$work/tty.out"; fail "vaec train on a terminal"; }
    grep -q 'ETA [0-9hms]*, run [0-9hms]*' "$work/tty.out" || { cat "$work/tty.out"; fail "no progress line on a terminal"; }
    script -qec "'$vaec' eval '$model' --params '$work/tty/checkpoint.vaeckpt' --test-limit 8 --iwae 10" "$work/eval.out" \
        >/dev/null 2>&1 || { cat "$work/eval.out"; fail "vaec eval on a terminal"; }
    grep -q 'log p(x) by IWAE: 8 of 8 examples, .* ETA' "$work/eval.out" || { cat "$work/eval.out"; fail "no eval progress"; }
    "$vaec" eval "$model" --params "$work/tty/checkpoint.vaeckpt" --test-limit 8 --iwae 10 >"$work/out" 2>&1 \
        || { cat "$work/out"; fail "vaec eval"; }
    grep -q 'ETA' "$work/out" && fail "vaec eval drew its progress into a file"
    echo "ok   progress lines with ETAs on a terminal (train, eval's IWAE), none in a file"
fi

# ---- --estimator: the model with another estimator, as if its file said so
sed 's/^estimator .*/estimator iwae(samples: 2)/' "$model" >"$work/iwae2.vae"
grep -q '^estimator iwae(samples: 2)$' "$work/iwae2.vae" || fail "could not write the model with iwae(samples: 2)"
train "$work/est_opt" --epochs 1 --estimator 'iwae(samples: 2)'
"$vaec" train "$work/iwae2.vae" $SMALL --epochs 1 --out "$work/est_file" >"$work/out" 2>&1 || { cat "$work/out"; fail "iwae2.vae"; }
cmp "$work/est_opt/checkpoint.vaeckpt" "$work/est_file/checkpoint.vaeckpt" \
    || fail "--estimator 'iwae(samples: 2)' does not train as the model file that says so"
header "$work/est_opt" "model settings" | grep -q '^estimator iwae; samples 2' \
    || fail "log.csv does not record --estimator: $(header "$work/est_opt" "model settings")"
"$vaec" train "$model" $SMALL --epochs 2 --resume "$work/est_opt" >"$work/out" 2>&1 && fail "a resume without --estimator accepted"
grep -q "cannot resume with other settings" "$work/out" || { cat "$work/out"; fail "resume without --estimator: $(cat "$work/out")"; }
resume "$work/est_opt" --epochs 2 --estimator 'iwae(samples: 2)'
refused "--estimator with a typo" "--estimator:1:6: error: estimator 'iwae' has no option 'samplez'" --estimator 'iwae(samplez: 2)' --out "$work/est_bad"
[ -e "$work/est_bad" ] && fail "a refused --estimator left a run folder"
"$vaec" check "$model" --estimator 'reparam(samples: 3)' | grep -q 'maximise  ELBO(x) = (1/3) sum_{s=1..3}' \
    || fail "vaec check --estimator does not print the other estimator's objective"
echo "ok   --estimator trains as the model file that says so, is recorded, resumed only with it, and located when wrong"

# ---- per-network optimisers (`optimizer prior = sgd(lr: 1e-2)`): every network given the
# optimiser of the train block's `optimizer` trains to its bits, also under a schedule (which
# scales each network's lr by the default's factor); a grouped run resumes bit for bit, and a
# resume with another network's optimiser is refused, naming it
b200="$top_srcdir/examples/fashion_bernoulli200.vae"
B="--limit 150 --test-limit 50 --jit quick --validation 50"
sed 's/^    optimizer = adam(lr: 1e-4)$/    optimizer = sgd(lr: 1e-2, momentum: 0.5)/; /^    optimizer prior = /d' "$b200" >"$work/sgd.vae"
sed 's/^    optimizer prior = .*/    optimizer prior = sgd(lr: 1e-2, momentum: 0.5)\
    optimizer q = sgd(lr: 1e-2, momentum: 0.5)\
    optimizer decoder = sgd(lr: 1e-2, momentum: 0.5)/' "$b200" >"$work/groups.vae"
grep -q '^    optimizer q = sgd' "$work/groups.vae" && ! grep -q '^    optimizer prior' "$work/sgd.vae" || fail "could not write the grouped models"
for f in sgd groups; do
    "$vaec" train "$work/$f.vae" $B --epochs 2 --out "$work/opt_$f" >"$work/out" 2>&1 || { cat "$work/out"; fail "$f.vae"; }
    "$vaec" train "$work/$f.vae" $B --epochs 2 --lr-step-epochs 1 --lr-step-factor 0.5 --out "$work/opt_${f}_step" \
        >"$work/out" 2>&1 || { cat "$work/out"; fail "$f.vae with a step decay"; }
done
cmp "$work/opt_sgd/checkpoint.vaeckpt" "$work/opt_groups/checkpoint.vaeckpt" \
    || fail "every network given sgd by name trains to other bits than sgd for the whole model"
cmp "$work/opt_sgd_step/checkpoint.vaeckpt" "$work/opt_groups_step/checkpoint.vaeckpt" \
    || fail "a schedule does not scale the per-network optimisers as it scales the default"
cmp -s "$work/opt_groups/checkpoint.vaeckpt" "$work/opt_groups_step/checkpoint.vaeckpt" && fail "the schedule changed nothing"
header "$work/opt_groups" "optimizer prior" | grep -q '^sgd, lr 0.01, momentum 0.5 (1 tensors, 200 values)$' \
    || fail "log.csv does not record the prior's optimiser: $(header "$work/opt_groups" "optimizer prior")"
"$vaec" train "$b200" $B --epochs 2 --out "$work/protocol2" >"$work/out" 2>&1 || { cat "$work/out"; fail "$b200"; }
grep -q 'adam lr 0.0001; prior: sgd lr 0.01$' "$work/out" || { cat "$work/out"; fail "the start line does not name the prior's optimiser"; }
"$vaec" train "$b200" $B --epochs 1 --out "$work/protocol1" >"$work/out" 2>&1 || { cat "$work/out"; fail "$b200, 1 epoch"; }
cp -r "$work/protocol1" "$work/protocol1b"
"$vaec" train "$b200" $B --epochs 2 --resume "$work/protocol1" >"$work/out" 2>&1 || { cat "$work/out"; fail "resume $b200"; }
cmp "$work/protocol1/checkpoint.vaeckpt" "$work/protocol2/checkpoint.vaeckpt" || fail "a grouped run resumed to other bits"
sed 's/^    optimizer prior = sgd(lr: 1e-2)$/    optimizer prior = sgd(lr: 2e-2)/' "$b200" >"$work/prior2.vae"
"$vaec" train "$work/prior2.vae" $B --epochs 2 --resume "$work/protocol1b" >"$work/out" 2>&1 && fail "a resume with another prior lr accepted"
grep -q "optimizer prior" "$work/out" || { cat "$work/out"; fail "the refused resume does not name the prior's optimiser"; }
echo "ok   per-network optimisers: by name and role they train to the whole model's bits, follow schedules, resume, are recorded"
