#!/bin/sh
# The numbers the README quotes about models (test ELBO, log p(x)), produced
# here and nowhere else: trains each model of the README's table with seed 0
# on the full Fashion-MNIST, evaluates it, writes bench/QUALITY.md and puts the
# same table and the fashion_gauss run's output into README.md between the
# <!-- quality:... --> markers.  About 10-20 minutes on 2 cores.
#
#   bench/quality.sh          # all of it
#   bench/quality.sh --quick  # 1 epoch, 2,000 test images, IWAE K = 50: checks the script, prints the
#                             # table and leaves README.md and bench/QUALITY.md as they are
#
# The bits, and so the last digits, depend on the matrix library configure chose
# and on the CPU (its vector width changes a library's summation order); the
# table says which it was.
set -e
cd "$(dirname "$0")/.."
vaec=${VAEC:-build/vaec} # VAEC=path: another build (a copy, while build/ is rebuilt)
[ -x "$vaec" ] || { echo "bench/quality.sh: build first (scripts/setup.sh)"; exit 1; }
epochs=10 limit="" iwae=1000 iwae_deep=5000 deep_limit=1000 quick=""
if [ "${1:-}" = "--quick" ]; then epochs=1 limit="--test-limit 2000" iwae=50 iwae_deep=50 deep_limit=200 quick=1; fi
data="--data fashion-mnist:train --test fashion-mnist:test" # explicit: fashion_mixture has no train block
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# train MODEL EPOCHS: trains into $work/MODEL, prints its output to $work/MODEL.out
train() {
    "$vaec" train "examples/$1.vae" $data --epochs "$2" --seed 0 $limit --out "$work/$1" >"$work/$1.out" 2>&1 \
        || { cat "$work/$1.out"; echo "bench/quality.sh: training $1 failed"; exit 1; }
}
# the last epoch's test value (log.csv's fourth column)
last_test() { tail -n 1 "$work/$1/log.csv" | cut -d, -f4; }
# eval MODEL ARGS...: the log p(x) line of vaec eval ("-120.73 +- 0.66" or "-222.69")
logpx() {
    m=$1; shift
    "$vaec" eval "examples/$m.vae" --test fashion-mnist:test --params "$work/$m/checkpoint.vaeckpt" --seed 0 "$@" >"$work/$m.eval" 2>&1 \
        || { cat "$work/$m.eval"; echo "bench/quality.sh: evaluating $m failed"; exit 1; }
    awk '/^log p\(x\)/ { if ($4 == "+-") printf "%.2f ± %.2f", $3, $5; else printf "%.2f", $3 }' "$work/$m.eval"
}
fmt() { awk -v v="$1" 'BEGIN { printf "%.2f", v }'; }

train fashion_gauss "$epochs"
train mixture_analytic "$epochs"
train fashion_mixture "$epochs"
gauss_logpx=$(logpx fashion_gauss --iwae "$iwae" $limit)
mixa_logpx=$(logpx mixture_analytic $limit)
mix_logpx=$(logpx fashion_mixture $limit)
deep=""
for m in fashion_gauss fashion_iwae5 fashion_iwae50 fashion_iwae50_dreg; do
    "$vaec" train "examples/$m.vae" $data --epochs 1 --seed 0 --out "$work/deep_$m" >"$work/deep_$m.out" 2>&1 \
        || { cat "$work/deep_$m.out"; exit 1; }
    "$vaec" eval "examples/$m.vae" --test fashion-mnist:test --params "$work/deep_$m/checkpoint.vaeckpt" --seed 0 --iwae "$iwae_deep" \
        --test-limit "$deep_limit" >"$work/deep_$m.eval" 2>&1 || { cat "$work/deep_$m.eval"; exit 1; }
    v=$(awk '/^log p\(x\)/ { printf "%.2f", $3 }' "$work/deep_$m.eval")
    deep="${deep:+$deep / }$v"
done

machine="$(lscpu | sed -n 's/^Model name: *//p' | head -n 1), $(nproc) cores"
{
    echo "Produced by \`bench/quality.sh${1:+ $1}\` on $(date -u +%Y-%m-%d): $machine; $("$vaec" --version | head -n 1)."
    echo "Seed 0, batch 128, Adam 1e-3, the full training set; the bits depend on the matrix library and the CPU."
    echo
    echo "| model | estimator | epochs | test ELBO | log p(x) |"
    echo "|---|---|---|---|---|"
    echo "| \`fashion_gauss\` | reparam | $epochs | $(fmt "$(last_test fashion_gauss)") | $gauss_logpx (IWAE, K = $iwae) |"
    echo "| \`mixture_analytic\` | analytic | $epochs | $(fmt "$(last_test mixture_analytic)") | $mixa_logpx (exact) |"
    echo "| \`fashion_mixture\` | reinforce(10, baseline) | $epochs | $(fmt "$(last_test fashion_mixture)") | $mix_logpx (exact) |"
    echo "| \`fashion_gauss\` / \`iwae5\` / \`iwae50\` / \`iwae50_dreg\` | | 1 | | $deep (IWAE-$iwae_deep, first $deep_limit test images) |"
} >"$work/table.md"
if [ -n "$quick" ]; then cat "$work/table.md"; exit 0; fi
{ echo "# Model quality"; echo; cat "$work/table.md"; echo; echo '`vaec train examples/fashion_gauss.vae`:'; echo;
  echo '```'; sed "s|$work/fashion_gauss|runs/fashion_gauss|g" "$work/fashion_gauss.out"; echo '```'; } >bench/QUALITY.md

# README.md: replace what lies between each pair of markers
sed "s|$work/fashion_gauss|runs/fashion_gauss|g" "$work/fashion_gauss.out" >"$work/run.txt"
awk -v table="$work/table.md" -v run="$work/run.txt" '
    /<!-- quality:table:end -->/ || /<!-- quality:run:end -->/ { skip = 0 }
    !skip { print }
    /<!-- quality:table:begin -->/ { while ((getline l < table) > 0) print l; skip = 1 }
    /<!-- quality:run:begin -->/ { print "```"; print "$ build/vaec train examples/fashion_gauss.vae";
                                   while ((getline l < run) > 0) print l; print "```"; skip = 1 }
' README.md >"$work/README.md"
cp "$work/README.md" README.md
cat bench/QUALITY.md
