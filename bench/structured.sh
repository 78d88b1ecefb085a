#!/bin/sh
# The structured examples (language version 1) side by side with their PyTorch peer
# (bench/structured_peer.py), after equal epochs, seed 0: writes bench/STRUCTURED.md.
#
#   bench/structured.sh [--quick] [CASE...]     CASE: gmvae iwae m2 (default: all three)
#
#   gmvae  examples/fashion_gmvae.vae: test ELBO per epoch, log p(x) (y exact, z by importance
#          sampling, K per state); examples/fashion_mixture.vae's beside it
#   iwae   examples/fashion_iwae2.vae and the one-layer bench/fashion_iwae1.vae (dynamic
#          binarisation both): test ELBO per epoch, test IWAE-5 bound and IWAE-5000 log p(x) at the end
#   m2     examples/fashion_m2.vae with 1,000 labels: test classification error of q(y | x) per
#          epoch, against the same classifier network trained on those labels alone (peer only)
#
# Each case's seconds per epoch (training only) are in its table too. A vaec part that fails
# (a model vaec cannot train yet) is reported in its table with vaec's message, and the
# script goes on; a failing peer stops it.
#
# Settings, from the environment: EPOCHS (10), CLASSIFIER_EPOCHS (100: the classifier alone
# sees 1,000 examples an epoch), LIMIT / TEST_LIMIT (training / test examples: all),
# LOGPX_LIMIT (test examples of the final log p(x): 1000), GMVAE_K (100 per state of y),
# IWAE_K (5000), THREADS (nproc), VAEC (build/vaec), PYTHON (/usr/bin/python3),
# OUT (bench/STRUCTURED.md). --quick: 1 epoch on 6,000 training and 2,000 test images, log p(x)
# on 100 with K = 50, tables printed, bench/STRUCTURED.md left as it is. The full run takes two
# hours or so on 2 cores: the peer's M2 and GMVAE epochs (10 forward passes per example, one per
# state of y) and the IWAE-5000 estimates are most of it.
set -e
cd "$(dirname "$0")/.."
missing="" # the peer: Debian's python3-torch, as bench/run.sh installs it
dpkg-query -W -f='${Status}' python3-torch 2>/dev/null | grep -q "install ok installed" || missing=python3-torch
if [ -n "$missing" ] && [ -z "${PYTHON:-}" ]; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q $missing
fi
[ -n "${VAEC:-}" ] || [ -x build/vaec ] || scripts/setup.sh
vaec=${VAEC:-build/vaec}
py=${PYTHON:-/usr/bin/python3}
out=${OUT:-bench/STRUCTURED.md}
epochs=${EPOCHS:-10} cepochs=${CLASSIFIER_EPOCHS:-100} limit=${LIMIT:-} tlimit=${TEST_LIMIT:-}
plimit=${LOGPX_LIMIT:-1000} gk=${GMVAE_K:-100} ik=${IWAE_K:-5000} threads=${THREADS:-$(nproc)}
quick=""
if [ "${1:-}" = "--quick" ]; then
    shift; quick=1
    epochs=${EPOCHS:-1} cepochs=${CLASSIFIER_EPOCHS:-5} limit=${LIMIT:-6000} tlimit=${TEST_LIMIT:-2000}
    plimit=${LOGPX_LIMIT:-100} gk=${GMVAE_K:-50} ik=${IWAE_K:-50}
fi
cases=${*:-gmvae iwae m2}
for c in $cases; do
    case $c in gmvae | iwae | m2) ;; *) echo "bench/structured.sh: unknown case '$c' (gmvae, iwae, m2)" >&2; exit 2 ;; esac
done
lim="${limit:+--limit $limit} ${tlimit:+--test-limit $tlimit}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
: >"$work/commands"
note() { echo "$*" >>"$work/commands"; echo "+ $*" >&2; }

# peer CASE [ARGS...]: bench/structured_peer.py's output in $work/peer_CASE.out
peer() {
    c=$1; shift
    note "$py bench/structured_peer.py $c --seed 0 --threads $threads $lim $*"
    "$py" bench/structured_peer.py "$c" --seed 0 --threads "$threads" $lim "$@" >"$work/peer_$c.out" 2>&1 \
        || { cat "$work/peer_$c.out" >&2; echo "bench/structured.sh: the peer failed on $c" >&2; exit 1; }
}
# psum CASE KEY: a value of the peer's summary line; pcol CASE KEY: its per-epoch values, a line each
psum() {
    awk -v k="$2" '/^summary / { for (i = 2; i <= NF; i++) if (index($i, k "=") == 1) { v = substr($i, length(k) + 2)
        print (v ~ /\./ ? sprintf("%.2f", v) : v) } }' "$work/peer_$1.out"
}
pcol() { awk -v k="$2" '/^epoch=/ { for (i = 1; i <= NF; i++) if (index($i, k "=") == 1) print substr($i, length(k) + 2) }' "$work/peer_$1.out"; }

# vtrain MODEL FILE: vaec trains FILE into $work/MODEL; on failure $work/MODEL.fail holds why
vtrain() {
    if [ ! -x "$vaec" ]; then echo "no vaec at $vaec (build first, or VAEC=path)" >"$work/$1.fail"; return; fi
    note "$vaec train $2 --data fashion-mnist:train --test fashion-mnist:test --epochs $epochs --seed 0 --threads $threads $lim --out DIR"
    "$vaec" train "$2" --data fashion-mnist:train --test fashion-mnist:test --epochs "$epochs" --seed 0 \
        --threads "$threads" $lim --out "$work/$1" >"$work/$1.out" 2>&1 && [ -s "$work/$1/log.csv" ] && return
    { echo "vaec could not train $2 (not merged yet, or failing):"; grep -v '^ *$' "$work/$1.out" | head -n 4; } >"$work/$1.fail"
    echo "bench/structured.sh: $(cat "$work/$1.fail")" >&2
}
# vcol MODEL NAME: a column of vaec's log.csv by its header's name (NAME an awk regex;
# "test" is the fourth column, the test value of the model's objective), one value a line
vcol() {
    [ -f "$work/$1.fail" ] && return 0
    grep -v '^#' "$work/$1/log.csv" | awk -F, -v k="$2" '
        NR == 1 { for (i = 1; i <= NF; i++) if ((k == "test" && i == 4) || (k != "test" && $i ~ k)) c = i; next }
        c { print $c }'
}
# vlogpx MODEL FILE ARGS...: vaec eval's log p(x) ("-120.73 ± 0.66" or "-222.69 (exact)")
vlogpx() {
    m=$1 f=$2; shift 2
    [ -f "$work/$m.fail" ] && { echo "n/a"; return; }
    note "$vaec eval $f --test fashion-mnist:test --params DIR/checkpoint.vaeckpt --seed 0 --threads $threads $*"
    if ! "$vaec" eval "$f" --test fashion-mnist:test --params "$work/$m/checkpoint.vaeckpt" --seed 0 --threads "$threads" \
        "$@" >"$work/$m.eval" 2>&1; then
        echo "bench/structured.sh: vaec eval $f failed: $(head -n 3 "$work/$m.eval")" >&2; echo "eval failed"; return
    fi
    awk '/^log p\(x\)/ { if ($4 == "+-") printf "%.2f ± %.2f", $3, $5; else printf "%.2f (exact)", $3 }' "$work/$m.eval"
}
# mean of the numbers on stdin, "n/a" when none
mean() { awk '$1 + 0 == $1 { s += $1; n++ } END { if (n) printf "%.2f", s / n; else printf "n/a" }'; }
# table HEADER FILE...: a markdown table of the epochs, one column per file (a value a line)
table() {
    echo "| epoch | $1 |"
    echo "$1" | awk -F'|' '{ printf "|---"; for (i = 1; i <= NF; i++) printf "|---"; print "|" }'
    shift
    for f in "$@"; do [ -s "$f" ] || echo "n/a" >"$f"; done
    paste -d'|' "$@" | awk -F'|' '{ printf "| %d", NR; for (i = 1; i <= NF; i++) printf " | %s", ($i == "" ? "n/a" : fmt($i)); print " |" }
        function fmt(v) { return v + 0 == v ? sprintf("%.2f", v) : v }'
}
# failures MODEL...: vaec's message for each model it could not train, as a quoted block
failures() { for m in "$@"; do [ -f "$work/$m.fail" ] && { echo; sed 's/^/> /' "$work/$m.fail"; }; done; true; }

gmvae() {
    peer gmvae --epochs "$epochs" --iwae "$gk" --iwae-limit "$plimit"
    vtrain fashion_gmvae examples/fashion_gmvae.vae
    vtrain fashion_mixture examples/fashion_mixture.vae
    g=$(vlogpx fashion_gmvae examples/fashion_gmvae.vae --iwae "$gk" --test-limit "$plimit")
    m=$(vlogpx fashion_mixture examples/fashion_mixture.vae --test-limit "$plimit")
    vcol fashion_gmvae test >"$work/g.v"; pcol gmvae test_elbo >"$work/g.p"
    vcol fashion_gmvae '^seconds$' >"$work/g.vs"; pcol gmvae seconds >"$work/g.ps"
    echo "## fashion_gmvae (epochs: $epochs)"
    echo
    table "vaec test ELBO | peer test ELBO | vaec s | peer s" "$work/g.v" "$work/g.p" "$work/g.vs" "$work/g.ps"
    echo
    echo "| | vaec | peer |"
    echo "|---|---|---|"
    echo "| log p(x), first $plimit test images (y exact, z: K = $gk per state) | $g | $(psum gmvae logpx) |"
    echo "| seconds per epoch | $(mean <"$work/g.vs") | $(psum gmvae seconds_per_epoch) |"
    echo "| \`fashion_mixture\` (vaec): test ELBO, exact log p(x) on the same images | $(vcol fashion_mixture test | tail -n 1 | mean), $m | |"
    failures fashion_gmvae fashion_mixture
}

iwae() {
    peer iwae2 --epochs "$epochs" --iwae "$ik" --iwae-limit "$plimit"
    peer iwae1 --epochs "$epochs" --iwae "$ik" --iwae-limit "$plimit"
    vtrain fashion_iwae2 examples/fashion_iwae2.vae
    vtrain fashion_iwae1 bench/fashion_iwae1.vae
    # vaec's per-epoch test value is the ELBO (log.csv's test column); the test IWAE-5 bound of
    # the last epoch comes from vaec eval --iwae 5 on every test image, as the peer's is
    b2=$(vlogpx fashion_iwae2 examples/fashion_iwae2.vae --iwae 5 ${tlimit:+--test-limit $tlimit})
    b1=$(vlogpx fashion_iwae1 bench/fashion_iwae1.vae --iwae 5 ${tlimit:+--test-limit $tlimit})
    l2=$(vlogpx fashion_iwae2 examples/fashion_iwae2.vae --iwae "$ik" --test-limit "$plimit")
    l1=$(vlogpx fashion_iwae1 bench/fashion_iwae1.vae --iwae "$ik" --test-limit "$plimit")
    vcol fashion_iwae2 test >"$work/i2.v"; pcol iwae2 test_elbo >"$work/i2.p"
    vcol fashion_iwae1 test >"$work/i1.v"; pcol iwae1 test_elbo >"$work/i1.p"
    vcol fashion_iwae2 '^seconds$' >"$work/i2.vs"; pcol iwae2 seconds >"$work/i2.ps"
    vcol fashion_iwae1 '^seconds$' >"$work/i1.vs"; pcol iwae1 seconds >"$work/i1.ps"
    echo "## fashion_iwae2 against the one-layer fashion_iwae1, dynamic binarisation (epochs: $epochs)"
    echo
    echo "Test ELBO per epoch (one sample per test image, the test images binarised once), trained on the IWAE-5 bound."
    echo
    table "vaec 2 layers | peer 2 layers | vaec 1 layer | peer 1 layer | vaec s (2) | peer s (2) | vaec s (1) | peer s (1)" \
        "$work/i2.v" "$work/i2.p" "$work/i1.v" "$work/i1.p" "$work/i2.vs" "$work/i2.ps" "$work/i1.vs" "$work/i1.ps"
    echo
    echo "| | vaec | peer |"
    echo "|---|---|---|"
    echo "| 2 layers: test IWAE-5 bound after epoch $epochs | $b2 | $(psum iwae2 test_iwae5) |"
    echo "| 1 layer: test IWAE-5 bound after epoch $epochs | $b1 | $(psum iwae1 test_iwae5) |"
    echo "| 2 layers: IWAE-$ik log p(x), first $plimit test images | $l2 | $(psum iwae2 logpx) |"
    echo "| 1 layer: IWAE-$ik log p(x), first $plimit test images | $l1 | $(psum iwae1 logpx) |"
    echo "| 2 layers: seconds per epoch | $(mean <"$work/i2.vs") | $(psum iwae2 seconds_per_epoch) |"
    echo "| 1 layer: seconds per epoch | $(mean <"$work/i1.vs") | $(psum iwae1 seconds_per_epoch) |"
    failures fashion_iwae2 fashion_iwae1
}

m2() {
    peer m2 --epochs "$epochs"
    peer classifier --epochs "$cepochs"
    vtrain fashion_m2 examples/fashion_m2.vae
    vcol fashion_m2 '^test_error$' | awk '{ print 100 * $1 }' >"$work/m.v" # log.csv: a fraction
    pcol m2 test_error >"$work/m.p"
    pcol classifier test_error | head -n "$epochs" >"$work/m.c"
    vcol fashion_m2 test >"$work/m.ve"; pcol m2 test_elbo >"$work/m.pe"
    vcol fashion_m2 '^seconds$' >"$work/m.vs"; pcol m2 seconds >"$work/m.ps"
    echo "## fashion_m2, 1,000 labels, classify = 50 (epochs: $epochs)"
    echo
    echo "Test classification error of q(y | x), %; the classifier alone is the peer's (an epoch: one pass over the 1,000 labels)."
    echo
    table "vaec M2 | peer M2 | peer classifier alone | vaec test ELBO | peer test ELBO | vaec s | peer s" \
        "$work/m.v" "$work/m.p" "$work/m.c" "$work/m.ve" "$work/m.pe" "$work/m.vs" "$work/m.ps"
    echo
    echo "| | vaec | peer |"
    echo "|---|---|---|"
    echo "| M2: test error after epoch $epochs, % | $(tail -n 1 "$work/m.v") | $(psum m2 test_error) |"
    echo "| classifier alone: test error after epoch $cepochs, % (best: epoch $(psum classifier best_epoch)) | | $(psum classifier test_error) ($(psum classifier best_test_error)) |"
    echo "| M2: seconds per epoch | $(mean <"$work/m.vs") | $(psum m2 seconds_per_epoch) |"
    echo "| labelled examples per batch of 128 | | $(psum m2 labelled_per_batch) |"
    failures fashion_m2
}

for c in $cases; do $c >"$work/$c.md"; done
machine="$(lscpu | sed -n 's/^Model name: *//p' | head -n 1), $(nproc) of its $(nproc --all) cores usable"
version=$([ -x "$vaec" ] && "$vaec" --version | head -n 1 || echo "no vaec build")
torch=$("$py" -c 'import torch; print(torch.__version__)')
{
    echo "# Structured models: vaec and its PyTorch peer"
    echo
    echo "Produced by \`bench/structured.sh${quick:+ --quick}${1:+ $*}\` on $(date -u +%Y-%m-%d): $machine;"
    echo "$version; PyTorch $torch; $threads threads each."
    echo "Seed 0, batch 128, Adam 1e-3, ${limit:-all 60000} training and ${tlimit:-all 10000} test images; the peer's"
    echo "networks, initialisation (nn.Linear's default), estimators and data treatment are the examples'"
    echo "(bench/structured_peer.py says how). Seconds per epoch: training only, test evaluation apart."
    for c in $cases; do echo; cat "$work/$c.md"; done
    echo
    echo "Commands (DIR: the run's folder):"
    echo
    echo '```'
    cat "$work/commands"
    echo '```'
} >"$work/all.md"
if [ -n "$quick" ]; then cat "$work/all.md"; exit 0; fi
cp "$work/all.md" "$out"
cat "$out"
