#!/bin/sh
# Data-parallel training over MPI (docs/cluster.md), on the few cores of a test machine:
#  - mpirun -np 1, 2 and 4 with --shards 4 write byte-identical checkpoints and log.csv rows
#    (but for the times), equal to one process with --shards 4; P = 2 with 6 shards (3 a
#    process: every shard exchanged) equals one process with 6;
#  - --shards 1 is no shards: the same bits as without the option; the emitted trainer with
#    --shards 4 computes vaec's bits, also on 2 processes (-DVAE_USE_MPI);
#  - vaec eval on 3 processes prints one process's ELBO and IWAE estimate;
#  - a batch that S does not divide, P = 3 with 4 shards, and processes given different seeds
#    are refused with one message, by every process (no run folder is written);
#  - a process killed mid-run ends the run with a message; the last epoch's checkpoint and
#    row survive, and --resume under mpirun continues to the bits of an uninterrupted run.
# Skipped when vaec was built without MPI or mpirun is missing.
. "${top_srcdir:-.}/tests/lib.sh"
model="$top_srcdir/examples/fashion_gauss.vae"
RUN="--data fashion-mnist:test --test fashion-mnist:test --limit 512 --test-limit 300 --epochs 2 --threads 1"
ARGS="$RUN --jit quick"
# the matrix library vaec was configured with (make check passes it on), for the emitted trainer
BLAS_CFLAGS=${BLAS_CFLAGS:--DVAE_USE_CBLAS $(ls -d /usr/include/*/openblas-pthread 2>/dev/null | head -n 1 | sed 's/^/-I/')}
BLAS_LIBS=${BLAS_LIBS:--lopenblas}

# log.csv without its times (columns 9 and 10) and the run's description and resumes (their command
# lines, processes and starts differ; the compared settings lines stay)
rows() { sed '/^# vaec version = /,/^# command line = /d; /^# resumed after epoch /d' "$1" | cut -d, -f1-8; }
same_run() { # folder, reference folder, what
    cmp "$1/checkpoint.vaeckpt" "$2/checkpoint.vaeckpt" || fail "$3: the checkpoint differs from one process's"
    rows "$1/log.csv" >"$work/a.csv"; rows "$2/log.csv" >"$work/b.csv"
    cmp "$work/a.csv" "$work/b.csv" || fail "$3: log.csv differs from one process's (times aside)"
}

# ---- one process: no MPI needed
"$vaec" train "$model" $ARGS --out "$work/plain" >/dev/null || fail "vaec train"
"$vaec" train "$model" $ARGS --shards 1 --out "$work/one" >/dev/null || fail "vaec train --shards 1"
same_run "$work/one" "$work/plain" "--shards 1"
"$vaec" train "$model" $ARGS --shards 4 --out "$work/s4" >"$work/s4.out" || fail "vaec train --shards 4"
grep -q "# shards = 4" "$work/s4/log.csv" || fail "log.csv does not record the shards"
cmp -s "$work/s4/checkpoint.vaeckpt" "$work/plain/checkpoint.vaeckpt" && fail "4 shards computed the very bits of none"
"$vaec" train "$model" $ARGS --batch 100 --shards 3 --out "$work/bad" >"$work/bad.out" 2>&1 && fail "batch 100 with 3 shards ran"
grep -q "batch 100 is not a multiple of shards 3" "$work/bad.out" || fail "batch 100, 3 shards: $(cat "$work/bad.out")"
"$vaec" train "$model" $ARGS --epochs 3 --resume "$work/s4" >"$work/bad.out" 2>&1 && fail "a run of 4 shards resumed without"
grep -q "shards = 4 in the run, not set now" "$work/bad.out" || fail "resume without shards: $(cat "$work/bad.out")"
# the emitted trainer with --shards 4: the JIT's bits
"$vaec" emit-c "$model" --shards 4 -o "$work/m.c" >/dev/null || fail "vaec emit-c --shards 4"
cc -std=c11 -O2 -ffp-contract=off -DVAE_MAIN -DVAE_USE_ZLIB $BLAS_CFLAGS "$work/m.c" -o "$work/m" $BLAS_LIBS -lz -lm ||
    fail "the emitted trainer does not build"
"$work/m" train $RUN --out "$work/e4" >/dev/null || fail "the emitted trainer (4 shards)"
same_run "$work/e4" "$work/s4" "the emitted trainer with 4 shards"
"$work/m" train $RUN --shards 2 --out "$work/bad" >"$work/bad.out" 2>&1 && fail "the emitted trainer ran 2 shards"
grep -q "compiled for 4 shard(s) of 32 examples" "$work/bad.out" || fail "emitted --shards 2: $(cat "$work/bad.out")"

# ---- processes
"$vaec" --version | grep -q "MPI: none" && { echo "SKIP: vaec was built without MPI (one-process shards passed)"; exit 77; }
command -v mpirun >/dev/null || { echo "SKIP: mpirun is not installed: apt-get install openmpi-bin (one-process shards passed)"; exit 77; }
root=""
[ "$(id -u)" = 0 ] && root="--allow-run-as-root" # Open MPI refuses root without it
# Open MPI does not free its own allocations at MPI_Finalize and unloads its plugins, so a leak
# check (a sanitizer build) would report them without a name to suppress them by: off for the
# processes mpirun starts; the one-process runs above keep it, and memory errors are still caught.
mpi() { np=$1; shift; ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" mpirun $root --oversubscribe -np "$np" "$@"; }
for np in 1 2 4; do
    mpi $np "$vaec" train "$model" $ARGS --shards 4 --out "$work/p$np" >"$work/p$np.out" 2>&1 ||
        { cat "$work/p$np.out"; fail "mpirun -np $np vaec train --shards 4"; }
    same_run "$work/p$np" "$work/s4" "mpirun -np $np --shards 4"
done
grep -q "each batch in 4 shards of 32, summed in a fixed tree; 4 processes" "$work/p4.out" ||
    fail "the output does not say how many processes and shards ran"
[ "$(grep -c '^epoch  1' "$work/p4.out")" = 1 ] || fail "more than one process printed the epochs"
"$vaec" train "$model" $ARGS --batch 96 --shards 6 --out "$work/s6" >/dev/null || fail "vaec train --shards 6"
mpi 2 "$vaec" train "$model" $ARGS --batch 96 --shards 6 --out "$work/p2s6" >"$work/p2s6.out" 2>&1 ||
    { cat "$work/p2s6.out"; fail "mpirun -np 2 vaec train --shards 6"; }
same_run "$work/p2s6" "$work/s6" "mpirun -np 2 --shards 6"
# clipping (after the shards' sum) and validation: every process clips alike, one process's bits
CLIP="--clip 20 --validation 64 --lr-warmup-steps 3"
"$vaec" train "$model" $ARGS --shards 4 $CLIP --out "$work/c4" >/dev/null || fail "vaec train --shards 4 $CLIP"
mpi 2 "$vaec" train "$model" $ARGS --shards 4 $CLIP --out "$work/pc2" >"$work/pc2.out" 2>&1 ||
    { cat "$work/pc2.out"; fail "mpirun -np 2 vaec train --shards 4 $CLIP"; }
same_run "$work/pc2" "$work/c4" "mpirun -np 2 --shards 4 $CLIP"
cmp "$work/pc2/best.vaeckpt" "$work/c4/best.vaeckpt" || fail "mpirun -np 2 $CLIP: best.vaeckpt differs"
grep -q "clipped [1-9]" "$work/pc2.out" || { cat "$work/pc2.out"; fail "$CLIP: no step was clipped"; }

if command -v mpicc >/dev/null; then # the emitted trainer over MPI
    mpicc -std=c11 -O2 -ffp-contract=off -DVAE_MAIN -DVAE_USE_MPI -DVAE_USE_ZLIB $BLAS_CFLAGS "$work/m.c" -o "$work/mm" \
        $BLAS_LIBS -lz -lm || fail "the emitted trainer does not build with -DVAE_USE_MPI"
    mpi 2 "$work/mm" train $RUN --out "$work/em2" >"$work/em2.out" 2>&1 || { cat "$work/em2.out"; fail "mpirun -np 2 (emitted)"; }
    same_run "$work/em2" "$work/s4" "the emitted trainer on 2 processes"
fi

# vaec eval: the ELBO and the IWAE estimate shared by 3 processes, one process's numbers (times aside)
evaluate() { "$@" eval "$model" --params "$work/s4/checkpoint.vaeckpt" --test fashion-mnist:test --test-limit 300 \
    --iwae 10 --jit quick | sed 's/, [0-9.]* s)/)/'; }
evaluate "$vaec" >"$work/eval1.out" || fail "vaec eval"
evaluate mpi 3 "$vaec" >"$work/eval3.out" 2>&1 || { cat "$work/eval3.out"; fail "mpirun -np 3 vaec eval"; }
grep -q "IWAE, K = 10" "$work/eval1.out" || fail "vaec eval printed no IWAE estimate"
cmp "$work/eval1.out" "$work/eval3.out" || fail "vaec eval on 3 processes: $(cat "$work/eval3.out")"

# refused set-ups: one message, a failing status, no run folder
refused() { # what, expected words; the command's output in $work/r.out
    grep -q "$2" "$work/r.out" || { cat "$work/r.out"; fail "$1: no message '$2'"; }
    [ "$(grep -c "$2" "$work/r.out")" = 1 ] || fail "$1: the message came more than once"
    [ ! -e "$work/bad" ] || fail "$1: a run folder was written"
}
mpi 3 "$vaec" train "$model" $ARGS --shards 4 --out "$work/bad" >"$work/r.out" 2>&1 && fail "3 processes with 4 shards ran"
refused "P = 3, S = 4" "3 processes cannot share 4 shards"
mpi 2 sh -c 'exec "$0" train "$1" $2 --shards 4 --out "$3" --seed $((OMPI_COMM_WORLD_RANK * 7))' \
    "$vaec" "$model" "$ARGS" "$work/bad" >"$work/r.out" 2>&1 && fail "processes with different seeds ran"
refused "different seeds" "process 1 of 2 differs from process 0"

# a process killed after the first epoch: the launcher ends the run, the first epoch survives
mpi 2 sh -c 'echo $$ >"$4.$OMPI_COMM_WORLD_RANK"; exec "$0" train "$1" $2 --epochs 100000 --shards 4 --out "$3"' \
    "$vaec" "$model" "$ARGS" "$work/k" "$work/pid" >"$work/k.out" 2>&1 &
launcher=$!
i=0
until [ -s "$work/k/log.csv" ] && grep -q '^1,' "$work/k/log.csv"; do
    i=$((i + 1)); [ $i -lt 600 ] || { kill $launcher; fail "the run wrote no epoch in 60 s"; }
    sleep 0.1
done
kill -9 "$(cat "$work/pid.1")"
i=0
while kill -0 $launcher 2>/dev/null; do
    i=$((i + 1)); [ $i -lt 300 ] || { kill $launcher; fail "the run went on for 30 s after a process was killed"; }
    sleep 0.1
done
wait $launcher && fail "mpirun succeeded although a process was killed"
grep -q "the launcher ends every process when one of them dies" "$work/k.out" || { cat "$work/k.out"; fail "no message on the killed run"; }
last=$(grep -v '^#' "$work/k/log.csv" | tail -n 1 | cut -d, -f1)
more=$((last + 1))
mpi 2 "$vaec" train "$model" $ARGS --epochs $more --shards 4 --resume "$work/k" >"$work/r.out" 2>&1 ||
    { cat "$work/r.out"; fail "--resume under mpirun"; }
"$vaec" train "$model" $ARGS --epochs $more --shards 4 --out "$work/whole" >/dev/null || fail "vaec train --shards 4"
same_run "$work/k" "$work/whole" "a killed run resumed under mpirun"
echo "PASS: MPI runs on 1, 2 and 4 processes give one process's bits; bad set-ups and a killed process end with a message"
