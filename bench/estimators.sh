#!/bin/sh
# The DisARM paper's Fashion-MNIST comparison (Dong, Mnih & Tucker 2020; the protocol is in
# examples/fashion_bernoulli200.vae), one model file trained with each estimator in turn by
# `vaec train --estimator SPEC`: writes bench/ESTIMATORS.md and bench/estimators.png.
#
#   bench/estimators.sh [--quick] [linear] [nonlinear]      (default: linear)
#
# Per estimator and model: STEPS steps of batch 50 on the training set's first 50,000 images
# (--validation 10000 holds out its last 10,000: the paper's split), one thread pinned to one
# CPU; the train ELBO of the last epoch (1,000 steps: the mean of the last 1,000 steps), the
# validation and test ELBO per epoch, the 100-sample bound on the test set (vaec eval --iwae 100,
# final checkpoint), the encoder-gradient variance (vaec gradvar, REPEATS draws on the first 50
# training images) at checkpoints along training with the run's own estimator, and at DisARM's
# final parameters with every estimator (the issue's reference numbers are measured so), and the
# seconds per 1,000 steps (log.csv's seconds: the training loop, evaluations excluded).
# An estimator that `vaec check --estimator` refuses (one not merged yet) is listed as skipped.
# One with a control network (relax(control: c)) trains the model with examples/
# fashion_bernoulli200_relax.vae's control network added (model_of, below).
#
# Settings, from the environment: STEPS (40000, a multiple of 1000), ESTIMATORS (specs, one per
# line; default below), PARALLEL (2 runs at a time at most), CPUS ("0 1": run i is pinned to the
# (i mod PARALLEL)-th), REPEATS (100), IWAE (100), CHECKPOINTS (epochs where the variance is
# measured; default 1 2 5 10 20 30 40 ... up to the last), VAEC (build/vaec), OUT
# (bench/ESTIMATORS.md; its section "## Notes" and what follows are kept), WORK (a temporary
# folder, removed; set it to keep the runs), REPORT_ONLY (set: rewrite the report and the plot
# from the runs kept in WORK, training nothing).  --quick: 2,000 steps, 20 repeats, IWAE on 500
# test images, the tables printed and bench/ESTIMATORS.md left as it is.
set -e
cd "$(dirname "$0")/.."
. bench/lib.sh
vaec=${VAEC:-build/vaec}
[ -x "$vaec" ] || { echo "bench/estimators.sh: no vaec at $vaec (build first, or VAEC=path)" >&2; exit 1; }
steps=${STEPS:-40000} repeats=${REPEATS:-100} iwae=${IWAE:-100} parallel=${PARALLEL:-2} cpus=${CPUS:-0 1}
out=${OUT:-bench/ESTIMATORS.md} png=bench/estimators.png quick="" tlimit=""
if [ "${1:-}" = "--quick" ]; then
    shift; quick=1 steps=${STEPS:-2000} repeats=${REPEATS:-20} tlimit="--test-limit 500"
fi
[ $((steps % 1000)) -eq 0 ] && [ "$steps" -gt 0 ] || { echo "bench/estimators.sh: STEPS must be a multiple of 1000" >&2; exit 2; }
epochs=$((steps / 1000)) # 50,000 images in batches of 50
models=${*:-linear}
for m in $models; do
    case $m in linear | nonlinear) ;; *) echo "bench/estimators.sh: unknown model '$m' (linear, nonlinear)" >&2; exit 2 ;; esac
done
default_estimators='reinforce(samples: 2, baseline: loo)
arm
disarm
relax(control: c)
vimco(samples: 2)
vimco(samples: 4)
disarm(samples: 2)'
estimators=${ESTIMATORS:-$default_estimators}
checkpoints=${CHECKPOINTS:-$(for e in 1 2 5 10 20 30 40 60 80 100 150 200 300 400 500 600 700 800 900 1000; do
    [ "$e" -lt "$epochs" ] && echo "$e"; done; echo "$epochs")}
work=${WORK:-$(mktemp -d)}
[ -n "${WORK:-}" ] || trap 'rm -rf "$work"' EXIT
mkdir -p "$work"
file_of() { [ "$1" = linear ] && echo examples/fashion_bernoulli200.vae || echo examples/fashion_bernoulli200_nonlinear.vae; }
# model_of MODEL SPEC: the file SPEC trains. An estimator with a control network (relax(control: c))
# trains the protocol's model with the control network of examples/fashion_bernoulli200_relax.vae
# added before its estimator line (written into $work): the same encoder, decoder, prior, data and
# optimisers as every other row, plus c.
model_of() {
    case $2 in
    *control:*)
        g="$work/$1-control.vae"
        [ -f "$g" ] || awk -v src=examples/fashion_bernoulli200_relax.vae '
            /^estimator / && !done { while ((getline l < src) > 0) { if (l ~ /^control /) on = 1; if (on) print l; if (on && l ~ /^}/) break }
                print ""; done = 1 }
            { print }' "$(file_of "$1")" >"$g"
        echo "$g" ;;
    *) file_of "$1" ;;
    esac
}
slug() { echo "$1" | tr -c 'a-zA-Z0-9\n' '_'; }
load() { cut -d' ' -f1-3 /proc/loadavg; }

# run MODEL SPEC CPU: trains into $work/MODEL-SLUG in stages (a checkpoint kept at each of
# CHECKPOINTS: --resume continues bit for bit), then the test bound and the variances
run() {
    f=$(model_of "$1" "$2") est=$2 d="$work/$1-$(slug "$2")" cpu=$3
    set -- "$f" --estimator "$est" --validation 10000 --seed 0 --threads 1 --test fashion-mnist:test $tlimit
    done_epochs=0
    for c in $checkpoints; do
        if [ "$done_epochs" -eq 0 ]; then where="--out $d --force"; else where="--resume $d"; fi
        taskset -c "$cpu" "$vaec" train "$@" --epochs "$c" $where >>"$d.train" 2>&1 \
            || { echo "training failed: $(tail -n 3 "$d.train")" >"$d.fail"; return 0; }
        cp "$d/checkpoint.vaeckpt" "$d/ckpt-$c.vaeckpt"
        done_epochs=$c
    done
    taskset -c "$cpu" "$vaec" eval "$f" --estimator "$est" --params "$d/checkpoint.vaeckpt" --iwae "$iwae" \
        --seed 0 --threads 1 --test fashion-mnist:test $tlimit >"$d.eval" 2>&1 || echo "eval failed" >"$d.fail"
    for c in $checkpoints; do
        taskset -c "$cpu" "$vaec" gradvar "$f" --params "$d/ckpt-$c.vaeckpt" --estimators "$est" \
            --repeats "$repeats" --batch 50 --seed 0 --threads 1 >"$d.gv-$c" 2>&1 || true
    done
}

# the runnable estimators (vaec check accepts them on the model) and the skipped ones
: >"$work/runnable"; : >"$work/skipped"
echo "$estimators" | while IFS= read -r e; do
    [ -n "$e" ] || continue
    if "$vaec" check "$(model_of linear "$e")" --estimator "$e" >/dev/null 2>"$work/check.err"; then echo "$e" >>"$work/runnable"
    else printf '%s\t%s\n' "$e" "$(grep -m1 error "$work/check.err" | sed 's/^[^ ]* error: //')" >>"$work/skipped"; fi
done
load_start=$(load)
start=$(date +%s)
[ -z "${REPORT_ONLY:-}" ] || [ -n "${WORK:-}" ] || { echo "bench/estimators.sh: REPORT_ONLY needs the WORK of a run" >&2; exit 2; }
[ -z "${REPORT_ONLY:-}" ] || { load_start=$(cat "$work/load_start") load_end=$(cat "$work/load_end") minutes=$(cat "$work/minutes"); }
[ -n "${REPORT_ONLY:-}" ] || for m in $models; do
    for lane in $(seq 0 $((parallel - 1))); do # lane l runs jobs l, l + P, ... one after another on its CPU
        cpu=$(echo $cpus | cut -d' ' -f$((lane + 1)))
        (k=0; while IFS= read -r e; do
            [ $((k % parallel)) -eq "$lane" ] && { echo "+ $m $e (CPU $cpu, load $(load))" >&2; run "$m" "$e" "${cpu:-0}"; }
            k=$((k + 1)); done <"$work/runnable") &
    done
    wait
    # every estimator at DisARM's final parameters, as the issue's reference variances were measured
    # (not one with a control network: DisARM's checkpoint has none, so its column says n/a)
    if [ -f "$work/$m-disarm/checkpoint.vaeckpt" ]; then
        list=$(grep -v 'control:' "$work/runnable" | paste -sd, -)
        taskset -c "$(echo $cpus | cut -d' ' -f1)" "$vaec" gradvar "$(file_of "$m")" --params "$work/$m-disarm/checkpoint.vaeckpt" \
            --estimators "$list" --repeats "$repeats" --batch 50 --seed 0 --threads 1 >"$work/$m.gv-disarm" 2>&1 || true
    fi
done
if [ -z "${REPORT_ONLY:-}" ]; then
    minutes=$(( ($(date +%s) - start + 30) / 60 )) load_end=$(load)
    echo "$load_start" >"$work/load_start"; echo "$load_end" >"$work/load_end"; echo "$minutes" >"$work/minutes"
fi

# col RUN NAME: a column of a run's log.csv, one value a line; "train" is the third, the value
# trained (train_ELBO, or the bound an estimator such as vimco trains)
col() { grep -v '^#' "$1/log.csv" | awk -F, -v k="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == k || (k == "train" && i == 3)) c = i; next } c { print $c }'; }
# the median and the least of the numbers on stdin: "median (least)"
median_min() { sort -g | awk '{ v[NR] = $1 } END { if (NR) printf "%.2f (%.2f)", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2, v[1] }'; }
# variance of SPEC in a gradvar output (the column after the estimator's name)
variance() { awk -v e="$2" 'index($0, e) == 1 { r = substr($0, length(e) + 1); split(r, f, " "); if (f[1] + 0 == f[1]) v = f[1] } END { print (v == "" ? "n/a" : v) }' "$1" 2>/dev/null; }
sci() { awk -v v="$1" 'BEGIN { if (v + 0 == v) printf "%.2e", v; else printf "n/a" }'; }
reference() { # the issue's PyTorch numbers: train ELBO, 100-sample bound, variance at DisARM's parameters
    case $1 in "disarm") echo "-276.00|-265.48|6.2e3" ;; "arm") echo "-276.53|-265.88|8.5e3" ;;
    "reinforce(samples: 2, baseline: loo)") echo "-276.91|-266.42|1.2e4" ;; *) echo "||" ;; esac
}

report() {
    echo "# The DisARM paper's Fashion-MNIST comparison, reproduced with vaec"
    echo
    echo "Written by \`bench/estimators.sh\` ($(date -u +%Y-%m-%d), vaec $("$vaec" --version | head -n 1 | cut -d' ' -f2-)):"
    echo "$steps steps ($epochs epochs of 1,000 batches of 50) per estimator, one thread pinned to one CPU, at most"
    echo "$parallel runs at once; $(nproc) CPUs, load average (1, 5, 15 min) $load_start at the start and $load_end at the end"
    echo "(the machine is shared), $minutes minutes in all. The paper trains for 1,000,000 steps: this budget is"
    echo "$(awk -v s="$steps" 'BEGIN { printf "%.1f%%", 100 * s / 1e6 }') of it, so the numbers are early in training, where the"
    echo "issue's PyTorch reference (same protocol, 40,000 steps) also stands."
    echo
    echo "Protocol: 200 Bernoulli latents with a learned prior, dynamic binarisation, the training set's first"
    echo "50,000 images for training and its last 10,000 for validation (\`--validation 10000\`), batch 50,"
    echo "Adam 1e-4 for the networks and SGD 1e-2 for the prior's logits (\`optimizer prior = sgd(lr: 1e-2)\`)."
    echo "RELAX (\`relax(control: c)\`) trains the same model with the control network of"
    echo "examples/fashion_bernoulli200_relax.vae added (\`c(z | x)\`: tanh(dense(concat(sigmoid(z), x), 50)),"
    echo "its output times 100), which follows the gradient of the encoder gradient's variance."
    echo "Train ELBO: the mean of the last epoch's 1,000 steps (for \`vimco(samples: K)\` and \`disarm(samples: K)\`"
    echo "the value trained is the K-sample bound, not the ELBO). Seconds per 1,000 steps: the epochs' training loops (log.csv's seconds), their"
    echo "median and the least, which is the closest to an unloaded machine. Test bound: \`vaec eval --iwae $iwae\` on the final checkpoint (± its standard"
    echo "error). Variance: \`vaec gradvar\`, the trace of the encoder gradient's covariance over $repeats draws"
    echo "on one batch (the first 50 training images, binarised by one fixed draw), at the run's final parameters"
    echo "with its own estimator, and at DisARM's final parameters with each estimator (as the reference's were;"
    echo "not RELAX, whose control network DisARM's checkpoint lacks)."
    for m in $models; do
        echo
        echo "## $(file_of "$m")"
        echo
        echo "| estimator | train ELBO | valid ELBO | test ELBO | test bound ($iwae samples) | variance, own parameters | variance at DisARM's | s / 1,000 steps, median (least) | reference: train ELBO / bound / variance |"
        echo "|---|---|---|---|---|---|---|---|---|"
        while IFS= read -r e; do
            d="$work/$m-$(slug "$e")"
            if [ -f "$d.fail" ]; then echo "| \`$e\` | $(cat "$d.fail") | | | | | | | |"; continue; fi
            tr=$(col "$d" train | tail -n 1) va=$(col "$d" valid_ELBO | tail -n 1) te=$(col "$d" test_ELBO | tail -n 1)
            b=$(awk '/^log p\(x\)/ { printf "%.2f ± %.2f", $3, $5 }' "$d.eval")
            own=$(sci "$(variance "$d.gv-$epochs" "$e")") at=$(sci "$(variance "$work/$m.gv-disarm" "$e")")
            sec=$(col "$d" seconds | median_min)
            ref=$(reference "$e")
            [ "$m" = linear ] && [ "$ref" != "||" ] && ref=$(echo "$ref" | sed 's#|# / #g') || ref=""
            printf '| `%s` | %.2f | %.2f | %.2f | %s | %s | %s | %s | %s |\n' "$e" "$tr" "$va" "$te" "$b" "$own" "$at" "$sec" "$ref"
        done <"$work/runnable"
        echo
        echo "Variance along training (own estimator, own parameters), by epoch:"
        echo
        printf '| estimator |'; for c in $checkpoints; do printf ' %s |' "$c"; done; echo
        printf '|---|'; for c in $checkpoints; do printf -- '---|'; done; echo
        while IFS= read -r e; do
            d="$work/$m-$(slug "$e")"
            printf '| `%s` |' "$e"; for c in $checkpoints; do printf ' %s |' "$(sci "$(variance "$d.gv-$c" "$e")")"; done; echo
        done <"$work/runnable"
        echo
        echo "Orderings the paper claims:"
        echo
        orderings "$m"
    done
    if [ -s "$work/skipped" ]; then
        echo
        echo "Skipped (\`vaec check --estimator\` refuses them on this model):"
        echo
        awk -F'\t' '{ printf "- `%s`: %s\n", $1, $2 }' "$work/skipped"
    fi
    echo
    echo "![curves]($(basename "$png"))"
}

# orderings MODEL: the paper's claims, checked on this run's numbers
orderings() {
    d="$work/$1" r='reinforce(samples: 2, baseline: loo)'
    last_elbo() { [ -f "$d-$(slug "$1")/log.csv" ] && col "$d-$(slug "$1")" train | tail -n 1; }
    var_at() { variance "$work/$1.gv-disarm" "$2"; }
    test_bound() { [ -f "$d-$(slug "$1").eval" ] && awk '/^log p\(x\)/ { print $3 }' "$d-$(slug "$1").eval"; }
    claim() { # TEXT A OP B: whether A OP B (> or <) holds
        awk -v t="$1" -v a="$2" -v op="$3" -v b="$4" 'BEGIN {
            if (a == "" || b == "" || a + 0 != a || b + 0 != b) { print "- " t ": n/a (not run)"; exit }
            ok = op == ">" ? a > b : a < b
            print "- " t ": " (ok ? "holds" : "does not hold") " (" a " against " b ")" }'
    }
    claim "DisARM's train ELBO above ARM's" "$(last_elbo disarm)" ">" "$(last_elbo arm)"
    claim "DisARM's train ELBO above REINFORCE-LOO-2's" "$(last_elbo disarm)" ">" "$(last_elbo "$r")"
    claim "DisARM's variance below ARM's (at DisARM's parameters)" "$(var_at "$1" disarm)" "<" "$(var_at "$1" arm)"
    claim "DisARM's variance below REINFORCE-LOO-2's (at DisARM's parameters)" "$(var_at "$1" disarm)" "<" "$(var_at "$1" "$r")"
    claim "local DisARM's train bound above VIMCO-2's (2-sample bounds; DisARM evaluates twice the decoder rows)" "$(last_elbo 'disarm(samples: 2)')" ">" "$(last_elbo 'vimco(samples: 2)')"
    claim "local DisARM-2's test bound above VIMCO-4's (as many decoder rows)" "$(test_bound 'disarm(samples: 2)')" ">" "$(test_bound 'vimco(samples: 4)')"
    claim "local DisARM-2's test bound above VIMCO-2's" "$(test_bound 'disarm(samples: 2)')" ">" "$(test_bound 'vimco(samples: 2)')"
}

# the plot: train and validation ELBO per epoch, the variance per checkpoint (linear model first)
plot() {
    cc -std=c11 -O2 $(pkg-config --cflags cairo) bench/estimators_plot.c -o "$work/plot" $(pkg-config --libs cairo) -lm
    m=$(echo $models | cut -d' ' -f1)
    while IFS= read -r e; do
        d="$work/$m-$(slug "$e")"
        [ -f "$d/log.csv" ] || continue
        grep -v '^#' "$d/log.csv" | awk -F, -v e="$e" 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
            { printf "0\t%s\t%s\t%s\n1\t%s\t%s\t%s\n", e, $c["epoch"], $3, e, $c["epoch"], $c["valid_ELBO"] }'
        for c in $checkpoints; do printf '2\t%s\t%s\t%s\n' "$e" "$c" "$(variance "$d.gv-$c" "$e")"; done
    done <"$work/runnable" | "$work/plot" "$1" "$(file_of "$m"): $steps steps per estimator, batch 50"
}

if [ -n "$quick" ]; then report; plot "$work/estimators.png"; echo "(plot: $work/estimators.png)"; exit 0; fi
notes=""
[ -f "$out" ] && notes=$(sed -n '/^## Notes/,$p' "$out")
{ report; [ -z "$notes" ] || { echo; echo "$notes"; }; } >"$out.tmp" && mv "$out.tmp" "$out"
plot "$png"
echo "wrote $out and $png" >&2
