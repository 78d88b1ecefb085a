#!/bin/sh
# vaec sample, reconstruct and plot through the command line, after tiny
# training runs of fashion_gauss (normal latents), mixture_analytic (an
# enumerable categorical) and mixture_prior (no encoder):
#  - the PNGs' headers (signature, size, bit depth, colour type) read with od,
#    apart from vaec's writer; .npy and .csv sizes;
#  - the same checkpoint and seed give the same bytes, another seed others;
#  - bad outputs (a symlink, a directory, a device, a wrong extension), a
#    missing or mismatched checkpoint and a model without an encoder end in a
#    message naming the file and status 1, with nothing written.
. "${top_srcdir:-.}/tests/lib.sh"

# The PNG's width, height, bit depth and colour type from its IHDR chunk: "W H DEPTH TYPE".
png_header() {
    [ "$(od -An -tx1 -N8 "$1" | tr -d ' \n')" = 89504e470d0a1a0a ] || { echo "not a PNG"; return; }
    od -An -tu1 -j16 -N10 "$1" | awk '{ print $1*16777216 + $2*65536 + $3*256 + $4, $5*16777216 + $6*65536 + $7*256 + $8, $9, $10 }'
}
# What vaec says and its status, for a command expected to fail: "$work/err" holds the message.
refused() {
    if "$vaec" "$@" >"$work/out" 2>"$work/err"; then fail "vaec $* succeeded"; fi
    [ -s "$work/err" ] || fail "vaec $* failed without a message"
}

for m in fashion_gauss mixture_analytic mixture_prior; do
    "$vaec" train "$top_srcdir/examples/$m.vae" --epochs 1 --limit 256 --test-limit 64 --out "$work/$m" >"$work/train.out" 2>&1 \
        || { cat "$work/train.out"; fail "vaec train $m exited with $?"; }
done
gauss="$top_srcdir/examples/fashion_gauss.vae"
mix="$top_srcdir/examples/mixture_analytic.vae"
ck="$work/fashion_gauss/checkpoint.vaeckpt"

# sample: a grid of 64 (8 x 8 tiles of 28 and 9 borders of 2 pixels: 242), the same bytes for the same seed
"$vaec" sample "$gauss" --params "$ck" -o "$work/a.png" --seed 5 || fail "vaec sample exited with $?"
"$vaec" sample "$gauss" --params "$ck" -o "$work/b.png" --seed 5 --threads 1 || fail "vaec sample exited with $?"
"$vaec" sample "$gauss" --params "$ck" -o "$work/c.png" --seed 6 || fail "vaec sample exited with $?"
[ "$(png_header "$work/a.png")" = "242 242 8 0" ] || fail "samples grid header: $(png_header "$work/a.png")"
cmp -s "$work/a.png" "$work/b.png" || fail "the same checkpoint and seed gave different PNG bytes"
cmp -s "$work/a.png" "$work/c.png" && fail "another seed gave the same PNG"
"$vaec" sample "$gauss" --params "$ck" -n 10 -o "$work/s10.png" || fail "vaec sample -n 10 exited with $?"
[ "$(png_header "$work/s10.png")" = "242 62 8 0" ] || fail "10 samples: $(png_header "$work/s10.png")"
"$vaec" sample "$gauss" --params "$ck" -n 3 -o "$work/s.npy" || fail "vaec sample .npy exited with $?"
[ "$(wc -c <"$work/s.npy")" -eq $((128 + 3 * 784 * 4)) ] || fail "s.npy has $(wc -c <"$work/s.npy") bytes"
[ "$(od -An -c -j1 -N5 "$work/s.npy" | tr -d ' ')" = NUMPY ] || fail "s.npy has no .npy magic"
"$vaec" sample "$gauss" --params "$ck" -n 3 -o "$work/s.csv" || fail "vaec sample .csv exited with $?"
[ "$(wc -l <"$work/s.csv")" -eq 3 ] && [ "$(head -n 1 "$work/s.csv" | tr ',' '\n' | wc -l)" -eq 784 ] \
    || fail "s.csv is not 3 lines of 784 values"

# reconstruct: 32 test images and their reconstructions, 4 pairs of rows of 8
"$vaec" reconstruct "$gauss" --params "$ck" -o "$work/r.png" || fail "vaec reconstruct exited with $?"
[ "$(png_header "$work/r.png")" = "242 242 8 0" ] || fail "reconstructions header: $(png_header "$work/r.png")"
"$vaec" reconstruct "$mix" --params "$work/mixture_analytic/checkpoint.vaeckpt" -n 8 -o "$work/rm.png" \
    || fail "vaec reconstruct mixture_analytic exited with $?"
[ "$(png_header "$work/rm.png")" = "242 62 8 0" ] || fail "mixture reconstructions: $(png_header "$work/rm.png")"
"$vaec" sample "$mix" --params "$work/mixture_analytic/checkpoint.vaeckpt" -o "$work/m.png" \
    || fail "vaec sample mixture_analytic exited with $?"
# one row per state: its mean and up to 10 test images (11 tiles across, 10 rows)
"$vaec" sample "$mix" --params "$work/mixture_analytic/checkpoint.vaeckpt" --states -o "$work/states.png" \
    || fail "vaec sample --states exited with $?"
[ "$(png_header "$work/states.png")" = "332 302 8 0" ] || fail "states grid: $(png_header "$work/states.png")"
refused sample "$gauss" --params "$ck" --states -o "$work/x.png"
grep -q "no enumerable discrete latents" "$work/err" || fail "--states of fashion_gauss: $(cat "$work/err")"
"$vaec" sample "$top_srcdir/examples/mixture_prior.vae" --params "$work/mixture_prior/checkpoint.vaeckpt" -o "$work/p.png" \
    || fail "vaec sample mixture_prior exited with $?"
refused reconstruct "$top_srcdir/examples/mixture_prior.vae" --params "$work/mixture_prior/checkpoint.vaeckpt" -o "$work/no.png"
grep -q "no encoder" "$work/err" || fail "mixture_prior's reconstruction: $(cat "$work/err")"
[ -e "$work/no.png" ] && fail "a refused reconstruction left a file"

# plot
"$vaec" plot "$work/fashion_gauss" || fail "vaec plot exited with $?"
[ "$(png_header "$work/fashion_gauss/curves.png" | cut -d' ' -f1)" = 960 ] || fail "curves.png: $(png_header "$work/fashion_gauss/curves.png")"
# a classification error (test_error) is drawn in a panel of its own, below the others
mkdir "$work/errors" "$work/no_errors"
printf 'epoch,step,train_ELBO,test_ELBO,test_recon,test_kl,test_exact_logpx,test_error,kl_weight_factor,seconds,examples_per_second\n1,10,-200,-190,-170,20,nan,0.40,1,1,100\n2,20,-150,-145,-125,20,nan,0.25,1,1,100\n' >"$work/errors/log.csv"
cut -d, -f8 --complement "$work/errors/log.csv" >"$work/no_errors/log.csv"
"$vaec" plot "$work/errors" >/dev/null || fail "vaec plot of a log with test_error exited with $?"
"$vaec" plot "$work/no_errors" >/dev/null || fail "vaec plot exited with $?"
with=$(png_header "$work/errors/curves.png" | cut -d' ' -f2)
without=$(png_header "$work/no_errors/curves.png" | cut -d' ' -f2)
[ "$with" -gt "$without" ] || fail "test_error has no panel of its own: $with vs $without pixels high"
refused plot "$work/nowhere"
grep -q "$work/nowhere/log.csv" "$work/err" || fail "plot of a missing run: $(cat "$work/err")"

# bad outputs and inputs
echo keep >"$work/target"
ln -s "$work/target" "$work/link.png"
refused sample "$gauss" --params "$ck" -o "$work/link.png"
grep -q "link.png: is a symbolic link" "$work/err" || fail "symlink: $(cat "$work/err")"
[ "$(cat "$work/target")" = keep ] || fail "the symlink's target was written"
mkdir "$work/dir.png"
refused reconstruct "$gauss" --params "$ck" -o "$work/dir.png"
grep -q "dir.png: is a folder" "$work/err" || fail "directory: $(cat "$work/err")"
# a device: /dev/full where /dev is not writable; as root, a FIFO instead (a broken check would
# rename the temporary file over the device itself)
device=/dev/full
if [ -w /dev ]; then device="$work/fifo"; mkfifo "$device"; fi
refused plot "$work/fashion_gauss" -o "$device"
grep -Eq "$device: is (not a regular file|a device)" "$work/err" || fail "$device: $(cat "$work/err")"
refused sample "$gauss" --params "$ck" -o "$work/x.jpg"
grep -q "must end in .png, .npy or .csv" "$work/err" || fail "extension: $(cat "$work/err")"
refused sample "$gauss" --params "$work/missing.vaeckpt" -o "$work/x.png"
grep -q "missing.vaeckpt" "$work/err" || fail "missing checkpoint: $(cat "$work/err")"
refused sample "$gauss" --params "$work/mixture_analytic/checkpoint.vaeckpt" -o "$work/x.png"
grep -q "checkpoint.vaeckpt" "$work/err" || fail "mismatched checkpoint: $(cat "$work/err")"
refused sample "$gauss" -o "$work/x.png"
grep -q "params CHECKPOINT is required" "$work/err" || fail "no --params: $(cat "$work/err")"
refused sample "$gauss" --params "$ck" -o "$work/x.png" -n 0
refused reconstruct "$gauss" --params "$ck" -o "$work/x.png" --data "$work/target"
grep -q "target" "$work/err" || fail "bad data: $(cat "$work/err")"
[ -e "$work/x.png" ] && fail "a refused command left x.png"
ls "$work" | grep -q '\.tmp\.' && fail "a temporary file was left: $(ls "$work")"
echo "images: all checks passed"
