#!/bin/sh
# Where each benchmark case's training time goes: perf samples (cpu-clock, both
# threads) of the emitted C trainer, which runs the JIT's kernels and the same
# runtime (bench/run.sh measures it within a few % of the JIT) and, unlike the
# JIT, has symbols.  Samples are sorted into what the issue's profile must name:
#   products    the matrix library's kernels (oneDNN's JIT code, OpenBLAS, BLIS)
#   Adam        the optimiser's pass over parameters, gradients and moments
#   waiting     a thread of the team spinning for the other (end of a product's
#               or kernel's share, or the member between jobs)
#   generated   vaec's generated elementwise kernels and reductions
#   conv data   im2col, col2im, the layout transposes and their memset
#   data        reading, inflating, binarising and gathering the images
#   kernel      the operating system;  other  everything else (the checkpoint
#               written each epoch, startup)
#     bench/profile.sh [EPOCHS]    (after scripts/setup.sh; needs perf)
set -e
cd "$(dirname "$0")/.."
out=bench/out/profile
mkdir -p $out
epochs=${1:-2}
case $epochs in
'' | *[!0-9]* | 0) echo "bench/profile.sh: EPOCHS must be a whole number of at least 1, not '$epochs'" >&2; exit 1 ;;
esac
command -v perf >/dev/null || { echo "bench/profile.sh: perf is not installed" >&2; exit 1; }
. bench/lib.sh # build_trainer
printf '| case | ex/s (step) | products | Adam | waiting | generated | conv data | data | kernel | other |\n'
printf '|---|---|---|---|---|---|---|---|---|---|\n'
for example in fashion_gauss fashion_iwae5 mixture_analytic mixture_reinforce fashion_conv; do
    build/vaec emit-c examples/$example.vae -o $out/$example.c >/dev/null
    build_trainer $out/$example.c $out/$example -g # symbols for perf
    perf record -q -o $out/$example.perf $out/$example train --epochs "$epochs" --limit 25600 --test-limit 100 \
        --out $out/run --force >$out/$example.log 2>&1
    speed=$(sed -n 's/.*(step only \([0-9]*\) ex\/s).*/\1/p' $out/$example.log | tail -n 1)
    perf report -i $out/$example.perf --no-children -s dso,sym -g none -t ';' 2>/dev/null | grep '%' | grep -v '^#' |
        awk -F';' -v n="$example" -v s="$speed" '
        {
            share = $1 + 0; dso = $2; sym = $3
            gsub(/ +$/, "", dso); sub(/^\[[.k]\] /, "", sym); gsub(/ +$/, "", sym)
            if (dso ~ /^\[JIT\]/ || dso ~ /^lib(dnnl|openblas|blis)/) c = "products"
            else if (sym ~ /^vr_(adam|sgd)/) c = "adam"
            else if (sym ~ /^(member_main|gemm|vr_gemm_jobs|vr_split|chunked_member|run_chunked|team_run)($|\.)/) c = "waiting"
            else if (sym ~ /^(train|eval|iwae)_/ || sym ~ /^vae_(train_step|eval)/) c = "generated"
            else if (sym ~ /^vr_(im2col|col2im|transpose)/ || sym ~ /memset/) c = "conv"
            else if (dso ~ /^lib(isal|z)/ || sym ~ /^(vr_data|gather_batch|load_idx)/) c = "data"
            else if (dso ~ /kernel/) c = "kernel"
            else c = "other"
            t[c] += share
        }
        END {
            printf "| %s | %s | %.1f%% | %.1f%% | %.1f%% | %.1f%% | %.1f%% | %.1f%% | %.1f%% | %.1f%% |\n", n, s,
                t["products"], t["adam"], t["waiting"], t["generated"], t["conv"], t["data"], t["kernel"], t["other"]
        }'
done
