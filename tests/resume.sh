#!/bin/sh
# vaec train --resume DIR continues a run bit for bit:
#  - 3 epochs in one run, or 1, then --resume for the second, then --resume for
#    the third, give the same checkpoint (cmp) and the same log rows except the
#    two time columns, with a KL warm-up (--warmup 2), which depends on the epoch;
#  - a run that died between an epoch's checkpoint and its log row resumes, and
#    the log and stdout say that row was lost;
#  - a run killed (kill -9) mid-epoch resumes from its last complete epoch and
#    ends where the uninterrupted run ends;
#  - refused, with what is wrong: another model, another --batch or --seed, a
#    folder without a checkpoint, --out naming another folder.
. "${top_srcdir:-.}/tests/lib.sh"
model="$top_srcdir/examples/fashion_gauss.vae"
SMALL="--limit 1280 --test-limit 200"

train() { # ARGS...: a run that must succeed
    "$vaec" train "$model" $SMALL "$@" >"$work/out" 2>&1 || { cat "$work/out"; fail "vaec train $* exited with $?"; }
}
refused() { # WHAT EXPECTED-MESSAGE ARGS...: a run that must fail with the message
    what=$1 expect=$2
    shift 2
    "$vaec" train "$@" >"$work/out" 2>&1 && { cat "$work/out"; fail "$what: accepted"; }
    grep -q "$expect" "$work/out" || { cat "$work/out"; fail "$what: the message does not say '$expect'"; }
}
# log rows without the time columns (9, 10) and without '#' lines
rows() { grep -v '^#' "$1" | cut -d, -f1-8; }
same_run() { # A B WHAT
    cmp "$1/checkpoint.vaeckpt" "$2/checkpoint.vaeckpt" || fail "$3: the checkpoints differ"
    rows "$1/log.csv" >"$work/rows1"
    rows "$2/log.csv" >"$work/rows2"
    diff "$work/rows1" "$work/rows2" || fail "$3: the log rows differ"
}

# 3 epochs with a KL warm-up, against 1, --resume to 2, then a crash between
# epoch 2's checkpoint and its row, --resume to 3: the lost row is noted, the
# parameters and the other rows are those of one run
train --epochs 3 --warmup 2 --jit quick --out "$work/whole"
train --epochs 1 --warmup 2 --jit quick --out "$work/part"
train --epochs 2 --warmup 2 --resume "$work/part"
grep -q "resuming .* after epoch 1 (step 10)" "$work/out" || { cat "$work/out"; fail "no resuming line"; }
[ "$(grep -vc '^#' "$work/part/log.csv")" -eq 3 ] || fail "after the resume, log.csv should hold 2 rows"
grep -v '^2,' "$work/part/log.csv" >"$work/log" && cp "$work/log" "$work/part/log.csv"
train --epochs 3 --warmup 2 --resume "$work/part"
grep -q "^# epoch 2: row lost" "$work/part/log.csv" || { cat "$work/part/log.csv"; fail "the lost row is not noted"; }
grep -q "epoch  2  its log row was lost" "$work/out" || { cat "$work/out"; fail "the lost row is not reported"; }
grep -v '^2,' "$work/whole/log.csv" >"$work/log" && cp "$work/log" "$work/whole/log.csv"
same_run "$work/whole" "$work/part" "3 epochs vs 1 + resume + resume, warmup 2"

# --epochs is the total: asking a 3-epoch run for 3 trains nothing and changes nothing
cp "$work/part/checkpoint.vaeckpt" "$work/before"
train --epochs 3 --warmup 2 --resume "$work/part"
grep -q "^epoch" "$work/out" && { cat "$work/out"; fail "--epochs 3 on a run of 3 epochs trained more"; }
cmp "$work/before" "$work/part/checkpoint.vaeckpt" || fail "--epochs 3 on a run of 3 epochs changed the checkpoint"

# kill -9 after epoch 1 is on disk, during epoch 2 or 3; resume from what is there
train --epochs 3 --jit quick --out "$work/whole3"
"$vaec" train "$model" $SMALL --epochs 3 --jit quick --out "$work/killed" >/dev/null 2>&1 &
pid=$!
n=0
while ! grep -q '^1,' "$work/killed/log.csv" 2>/dev/null && kill -0 $pid 2>/dev/null && [ $n -lt 2000 ]; do
    sleep 0.01
    n=$((n + 1))
done
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
grep -q '^3,' "$work/killed/log.csv" && echo "note: the run ended before it was killed"
train --epochs 3 --resume "$work/killed"
cat "$work/out"
same_run "$work/whole3" "$work/killed" "resume after kill -9"

# nvil's running statistics (state tensors beside the parameters, not trained) are in the
# checkpoint: 2 epochs in one run, or 1 and --resume, end with the same bits
nvil="$top_srcdir/examples/mixture_nvil.vae"
"$vaec" train "$nvil" --limit 512 --test-limit 100 --epochs 2 --out "$work/nvil2" >"$work/out" 2>&1 || { cat "$work/out"; fail "nvil: 2 epochs"; }
"$vaec" train "$nvil" --limit 512 --test-limit 100 --epochs 1 --out "$work/nvil1" >"$work/out" 2>&1 || { cat "$work/out"; fail "nvil: 1 epoch"; }
"$vaec" train "$nvil" --limit 512 --test-limit 100 --epochs 2 --resume "$work/nvil1" >"$work/out" 2>&1 || { cat "$work/out"; fail "nvil: resume"; }
same_run "$work/nvil2" "$work/nvil1" "nvil: 2 epochs vs 1 + resume"

# refusals, each naming what differs
refused "another model" "model: fashion_gauss in the run, fashion_iwae5 now" \
    "$top_srcdir/examples/fashion_iwae5.vae" $SMALL --epochs 3 --resume "$work/whole3"
refused "another batch" "batch: 128 in the run, 64 now" "$model" $SMALL --epochs 3 --batch 64 --resume "$work/whole3"
refused "another seed" "seed: 0 in the run, 9 now" "$model" $SMALL --epochs 3 --seed 9 --resume "$work/whole3"
mkdir "$work/empty"
refused "no checkpoint" "$work/empty: no checkpoint to resume from" "$model" $SMALL --resume "$work/empty"
refused "no folder" "$work/nowhere: cannot resume" "$model" $SMALL --resume "$work/nowhere"
refused "--out elsewhere" "a resumed run is written into its own folder" "$model" $SMALL --resume "$work/whole3" --out "$work/x"
cmp "$work/whole3/checkpoint.vaeckpt" "$work/killed/checkpoint.vaeckpt" || fail "a refused resume changed the checkpoint"
echo "resume: all checks passed"
