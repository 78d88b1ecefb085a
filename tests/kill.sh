#!/bin/sh
# kill -9 at random moments never leaves a run's files torn or mistaken:
#  - the checkpoint on disk always loads (it is renamed into place whole);
#  - log.csv never holds a row whose checkpoint is not on disk: its rows are
#    epochs 1..n, whole, and the checkpoint holds epoch n or n + 1 (the row is
#    appended after the checkpoint is renamed);
#  - the only other files are NAME.tmp.PID of killed runs, which the next run
#    in the folder removes.
. "${top_srcdir:-.}/tests/lib.sh"
model="$top_srcdir/examples/fashion_gauss.vae"
KILLS=${KILLS:-30}
run="$work/run"
params=$("$vaec" check "$model" | awk '$1 == "parameters" { print $2 }')
[ -n "$params" ] || fail "vaec check printed no parameter count"
steps_per_epoch=2 # --limit 256, batch 128

# the epoch a checkpoint holds, from its step (the i64 before the parameters and Adam's two moments)
ckpt_epoch() {
    size=$(wc -c <"$1")
    step=$(od -An -t d8 -j $((size - 4 - 12 * params - 8)) -N 8 "$1" | tr -d ' ')
    echo $((step / steps_per_epoch))
}

killed=""
with_ckpt=0
epochs_seen=""
i=0
while [ $i -lt "$KILLS" ]; do
    i=$((i + 1))
    "$vaec" train "$model" --data fashion-mnist:test --epochs 100000 --limit 256 --test-limit 10 --jit quick --out "$run" --force \
        >"$work/out" 2>&1 &
    pid=$!
    # every third kill lands anywhere from the launch; the others once training has begun
    # (the files are open and the first line is out), at most 0.6 s into it
    if [ $((i % 3)) -ne 0 ]; then
        n=0
        while ! grep -q "^training" "$work/out" && kill -0 $pid 2>/dev/null && [ $n -lt 500 ]; do
            sleep 0.02
            n=$((n + 1))
        done
    fi
    sleep "$(awk -v s="$i" 'BEGIN { srand(s); printf "%.3f", 0.6 * rand() }')"
    kill -9 $pid 2>/dev/null
    wait $pid 2>/dev/null
    killed="$killed $pid"
    [ -d "$run" ] || continue
    rows=0
    [ -f "$run/log.csv" ] && rows=$(($(grep -vc '^#' "$run/log.csv") - 1)) # '#' lines: the run's settings
    [ $rows -ge 0 ] || fail "kill $i: log.csv has no header"
    if [ -f "$run/log.csv" ]; then
        grep -v '^#' "$run/log.csv" | awk -F, 'NR > 1 && (NF != 10 || $1 != NR - 1) { exit 1 }' \
            || { cat "$run/log.csv"; fail "kill $i: log.csv holds a torn or out-of-order row"; }
    fi
    if [ -f "$run/checkpoint.vaeckpt" ]; then
        "$vaec" eval "$model" --params "$run/checkpoint.vaeckpt" --test-limit 10 --iwae 0 --jit quick >"$work/eval" 2>&1 \
            || { cat "$work/eval"; fail "kill $i: the checkpoint left by kill -9 does not load"; }
        e=$(ckpt_epoch "$run/checkpoint.vaeckpt")
        with_ckpt=$((with_ckpt + 1)); epochs_seen="$epochs_seen $e"
        [ $rows -eq "$e" ] || [ $((rows + 1)) -eq "$e" ] \
            || fail "kill $i: log.csv has $rows epoch rows, the checkpoint holds epoch $e"
    else
        [ $rows -eq 0 ] || fail "kill $i: log.csv has $rows rows and there is no checkpoint"
    fi
    for f in "$run"/* "$run"/.[!.]*; do
        [ -e "$f" ] || continue
        case $(basename "$f") in
        checkpoint.vaeckpt | log.csv | events.out.tfevents.* | *.png) ;; # the run's files, its events and grids
        *.tmp.*)
            p=${f##*.tmp.}
            case " $killed " in *" $p "*) ;; *) fail "kill $i: $f is not the file of a killed run" ;; esac ;;
        *) fail "kill $i: unexpected file $f" ;;
        esac
    done
done
echo "$KILLS kills, $with_ckpt with a checkpoint (epochs$epochs_seen): every checkpoint loaded; log.csv never ahead of it; only killed runs' temporary files"

# the next run in the folder removes the killed runs' temporary files and says so
mkdir -p "$run"
touch "$run/checkpoint.vaeckpt.tmp.$pid"
"$vaec" train "$model" --epochs 1 --limit 256 --test-limit 10 --jit quick --out "$run" --force >"$work/out" 2>&1 \
    || { cat "$work/out"; fail "a run after the kills"; }
grep -q "removed $run/checkpoint.vaeckpt.tmp.$pid, the unfinished file of a killed run" "$work/out" \
    || { cat "$work/out"; fail "the stale temporary file's removal is not reported"; }
ls "$run" | grep -q tmp && { ls "$run"; fail "temporary files of killed runs remain"; }
echo "kill: all checks passed"
