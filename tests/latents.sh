#!/bin/sh
# vaec encode and vaec interpolate through the command line, after tiny training
# runs (fashion_gauss: normal latents; mixture_analytic: an enumerable categorical;
# mixture_prior: no encoder; fashion_gmvae: an encoder that reads a latent;
# fashion_cvae: encoders that read an observed label, from the data's labels):
#  - encode's header names its columns, its labels are the test set's (read with od
#    from the IDX file), a categorical's probabilities sum to 1, .npy has its size;
#  - interpolate's paths end in the decoded encodings of their end images: their
#    tiles are the pixels of vaec reconstruct's (read back with libpng, tests/png_tiles),
#    also with a discrete latent beside the normal ones (fashion_gmvae);
#  - bad input ends in a message naming the file and status 1, with nothing written.
. "${top_srcdir:-.}/tests/lib.sh"
tiles="$(cd "$top_builddir" && pwd)/tests/png_tiles"
data_dir=${VAE_DATA_DIR:-/usr/share/datasets/fashion-mnist}

png_size() { od -An -tu1 -j16 -N8 "$1" | awk '{ print $1*16777216 + $2*65536 + $3*256 + $4, $5*16777216 + $6*65536 + $7*256 + $8 }'; }
refused() {
    if "$vaec" "$@" >"$work/out" 2>"$work/err"; then fail "vaec $* succeeded"; fi
    [ -s "$work/err" ] || fail "vaec $* failed without a message"
}

for m in fashion_gauss:1 mixture_analytic:1 mixture_prior:0 fashion_cvae:0 fashion_gmvae:0 fashion_bernoulli200:0; do
    "$vaec" train "$top_srcdir/examples/${m%:*}.vae" --epochs "${m#*:}" --data fashion-mnist:train --limit 256 \
        --test fashion-mnist:test --test-limit 64 --out "$work/${m%:*}" \
        >"$work/train.out" 2>&1 || { cat "$work/train.out"; fail "vaec train ${m%:*} failed"; }
done
gauss="$top_srcdir/examples/fashion_gauss.vae"
mix="$top_srcdir/examples/mixture_analytic.vae"
ck="$work/fashion_gauss/checkpoint.vaeckpt"
mck="$work/mixture_analytic/checkpoint.vaeckpt"

# encode: a label, 20 means and 20 log-variances per example; the labels are the IDX file's
"$vaec" encode "$gauss" --params "$ck" --data fashion-mnist:test --limit 5 -o "$work/e.csv" >/dev/null \
    || fail "vaec encode exited with $?"
[ "$(wc -l <"$work/e.csv")" -eq 6 ] || fail "e.csv: $(wc -l <"$work/e.csv") lines, not a header and 5 rows"
head -n 1 "$work/e.csv" | tr ',' '\n' >"$work/cols"
[ "$(wc -l <"$work/cols")" -eq 41 ] || fail "e.csv has $(wc -l <"$work/cols") columns, not 41"
[ "$(sed -n '1p;2p;22p;41p' "$work/cols" | tr '\n' ' ')" = "label z.mean[0] z.logvar[0] z.logvar[19] " ] \
    || fail "e.csv's columns: $(head -n 1 "$work/e.csv" | cut -c1-80)"
want=$(gzip -dc "$data_dir/t10k-labels-idx1-ubyte.gz" | od -An -tu1 -j8 -N5 | tr -s ' \n' ' ' | sed 's/^ //; s/ $//')
got=$(tail -n +2 "$work/e.csv" | cut -d, -f1 | tr '\n' ' ' | sed 's/ $//')
[ "$got" = "$want" ] || fail "encode's labels '$got', the test set's '$want'"
"$vaec" encode "$gauss" --params "$ck" --limit 5 -o "$work/e.npy" >/dev/null || fail "vaec encode .npy exited with $?"
[ "$(wc -c <"$work/e.npy")" -eq $((128 + 5 * 41 * 4)) ] || fail "e.npy has $(wc -c <"$work/e.npy") bytes"
head -c 128 "$work/e.npy" | grep -q "'shape': (5, 41)" || fail "e.npy's header: $(head -c 128 "$work/e.npy")"
# the means are what the emitted API's MODEL_encode computes: tests/emit.sh compares them

# a categorical latent: each example's state probabilities, summing to 1
"$vaec" encode "$mix" --params "$mck" --limit 20 -o "$work/m.csv" >/dev/null || fail "vaec encode mixture exited with $?"
head -n 1 "$work/m.csv" | grep -q '^label,z.p\[0\],z.p\[1\],' || fail "m.csv's header: $(head -n 1 "$work/m.csv")"
tail -n +2 "$work/m.csv" | awk -F, '{ s = 0; for (i = 2; i <= NF; i++) { if ($i < 0 || $i > 1) bad = 1; s += $i }
    if (s < 0.99999 || s > 1.00001) bad = 1 } END { exit bad || NR != 20 }' \
    || fail "mixture_analytic's state probabilities do not each sum to 1 over 20 rows"

# an encoder that reads a latent (z's reads y, at y's probabilities): y's 10, z's 16 means and 16 log-variances
gm="$top_srcdir/examples/fashion_gmvae.vae"
gck="$work/fashion_gmvae/checkpoint.vaeckpt"
"$vaec" encode "$gm" --params "$gck" --data fashion-mnist:test --limit 4 -o "$work/g.csv" >/dev/null \
    || fail "vaec encode fashion_gmvae exited with $?"
[ "$(head -n 1 "$work/g.csv" | tr ',' '\n' | sed 's/\[.*//' | uniq -c | tr -s ' \n' ' ')" = " 1 label 10 y.p 16 z.mean 16 z.logvar " ] \
    || fail "fashion_gmvae's columns: $(head -n 1 "$work/g.csv" | cut -c1-80)"
tail -n +2 "$work/g.csv" | awk -F, '{ s = 0; for (i = 2; i <= 11; i++) s += $i; if (s < 0.99999 || s > 1.00001) bad = 1 }
    END { exit bad || NR != 4 }' || fail "fashion_gmvae's y probabilities do not sum to 1"

# five normal latents: ten encoder outputs, more than one concat takes (joined in groups, in order);
# training (which builds the encode graph for its pictures) and encode work
cat >"$work/five.vae" <<'EOF'
model five
data x[784] : binary
latent a[2] ~ normal(0, 1)
latent b[2] ~ normal(0, 1)
latent c[2] ~ normal(0, 1)
latent d[2] ~ normal(0, 1)
latent e[3] ~ normal(0, 1)
encoder qa(a | x) { return normal(mean: dense(x, 2), logvar: dense(x, 2)) }
encoder qb(b | x) { return normal(mean: dense(x, 2), logvar: dense(x, 2)) }
encoder qc(c | x) { return normal(mean: dense(x, 2), logvar: dense(x, 2)) }
encoder qd(d | x) { return normal(mean: dense(x, 2), logvar: dense(x, 2)) }
encoder qe(e | x) { return normal(mean: dense(x, 3), scale: softplus(dense(x, 3))) }
decoder p(x | a, b, c, d, e) { return bernoulli(logits: dense(concat(a, b, c, d, e), 784)) }
estimator reparam
EOF
"$vaec" train "$work/five.vae" --epochs 0 --data fashion-mnist:train --limit 128 --out "$work/five" >"$work/train.out" 2>&1 \
    || { cat "$work/train.out"; fail "vaec train of five latents failed"; }
"$vaec" encode "$work/five.vae" --params "$work/five/checkpoint.vaeckpt" --data fashion-mnist:test --limit 3 -o "$work/f.csv" \
    >/dev/null || fail "vaec encode of five latents exited with $?"
[ "$(head -n 1 "$work/f.csv" | tr ',' '\n' | sed 's/\[.*//' | uniq | tr '\n' ' ')" = "label a.mean a.logvar b.mean b.logvar c.mean c.logvar d.mean d.logvar e.mean e.scale " ] \
    || fail "five latents' columns: $(head -n 1 "$work/f.csv")"
tail -n +2 "$work/f.csv" | awk -F, '{ for (i = 21; i <= 23; i++) if ($i <= 0) bad = 1 } END { exit bad || NR != 3 }' \
    || fail "e's scales (softplus) are not all positive: the columns are out of order"

# refusals: no encoder, a structured model, a bad name, an output that is a folder, missing data
refused encode "$top_srcdir/examples/mixture_prior.vae" --params "$work/mixture_prior/checkpoint.vaeckpt" -o "$work/no.csv"
grep -q "no encoder for latent z" "$work/err" || fail "mixture_prior's encode: $(cat "$work/err")"
# an observed label: z's encoder reads each example's class, so another class gives other means
cv="$top_srcdir/examples/fashion_cvae.vae"
cck="$work/fashion_cvae/checkpoint.vaeckpt"
"$vaec" encode "$cv" --params "$cck" --limit 6 -o "$work/c.csv" >/dev/null || fail "vaec encode fashion_cvae exited with $?"
head -n 1 "$work/c.csv" | grep -q '^label,z.mean\[0\],' || fail "fashion_cvae's columns: $(head -n 1 "$work/c.csv" | cut -c1-60)"
# the first 6 test images as an IDX file of their own (magic 0x803, 6 images of 28 x 28), which has no labels
{ printf '\0\0\10\3\0\0\0\6\0\0\0\34\0\0\0\34'; gzip -dc "$data_dir/t10k-images-idx3-ubyte.gz" | tail -c +17 | head -c $((6 * 784)); } \
    >"$work/six.idx"
printf '1\n1\n1\n1\n1\n1\n' >"$work/ones.csv"
printf '2\n2\n2\n2\n2\n2\n' >"$work/twos.csv"
"$vaec" encode "$cv" --params "$cck" --data "$work/six.idx" --labels "$work/ones.csv" -o "$work/c1.csv" >/dev/null \
    || fail "vaec encode --labels exited with $?"
"$vaec" encode "$cv" --params "$cck" --data "$work/six.idx" --labels "$work/twos.csv" -o "$work/c2.csv" >/dev/null \
    || fail "vaec encode --labels exited with $?"
[ "$(cut -d, -f1 "$work/c1.csv" | tail -n +2 | sort -u)" = 1 ] || fail "--labels ones.csv: labels $(cut -d, -f1 "$work/c1.csv" | tr '\n' ' ')"
[ "$(cut -d, -f2- "$work/c1.csv")" = "$(cut -d, -f2- "$work/c2.csv")" ] && fail "fashion_cvae's means do not depend on the label"
refused encode "$cv" --params "$cck" --data "$work/six.idx" -o "$work/no.csv"
grep -q "read label y.*six.idx has no labels" "$work/err" || fail "fashion_cvae without labels: $(cat "$work/err")"
refused encode "$gauss" --params "$ck" -o "$work/no.txt"
grep -q "no.txt.*csv or .npy" "$work/err" || fail "encode -o no.txt: $(cat "$work/err")"
mkdir "$work/folder.csv"
refused encode "$gauss" --params "$ck" -o "$work/folder.csv"
grep -q "folder.csv" "$work/err" || fail "encode into a folder: $(cat "$work/err")"
refused encode "$gauss" --params "$ck" --data "$work/missing.npy" -o "$work/no.csv"
grep -q "missing.npy" "$work/err" || fail "encode of a missing file: $(cat "$work/err")"
refused encode "$gauss" --params "$ck" --limit 0 -o "$work/no.csv"
refused encode "$gauss" -o "$work/no.csv"
grep -q -- "--params" "$work/err" || fail "encode without --params: $(cat "$work/err")"
[ -e "$work/no.csv" ] || [ -e "$work/no.txt" ] && fail "a refused encode left a file"

# interpolate: 4 paths of 5 steps (7 tiles across), a blank row, 20 traversals: 212 x 752 pixels
"$vaec" interpolate "$gauss" --params "$ck" -n 5 -o "$work/i.png" >/dev/null || fail "vaec interpolate exited with $?"
[ "$(png_size "$work/i.png")" = "212 752" ] || fail "interpolate's grid: $(png_size "$work/i.png")"
"$vaec" reconstruct "$gauss" --params "$ck" -n 8 -o "$work/r.png" >/dev/null || fail "vaec reconstruct exited with $?"
for r in 0 1 2 3; do # path r runs from test image 2r to 2r+1: reconstruct's row 0 (originals) and 1 (decoded)
    a=$((2 * r)) b=$((2 * r + 1))
    "$tiles" "$work/i.png" $r 0 "$work/r.png" 0 $a || fail "path $r does not start at test image $a"
    "$tiles" "$work/i.png" $r 1 "$work/r.png" 1 $a || fail "path $r's first step is not test image $a's decoded encoding"
    "$tiles" "$work/i.png" $r 5 "$work/r.png" 1 $b || fail "path $r's last step is not test image $b's decoded encoding"
    "$tiles" "$work/i.png" $r 6 "$work/r.png" 0 $b || fail "path $r does not end at test image $b"
    "$tiles" "$work/i.png" $r 1 "$work/i.png" $r 3 >/dev/null && fail "path $r's middle is one of its ends"
done
"$tiles" "$work/i.png" 5 0 "$work/r.png" 0 0 || fail "the traversals are not of test image 0"
moved=0
for d in $(seq 5 24); do "$tiles" "$work/i.png" $d 1 "$work/i.png" $d 5 >/dev/null || moved=$((moved + 1)); done
[ $moved -gt 0 ] || fail "no latent dimension's traversal changes the decoded image"
"$vaec" interpolate "$gauss" --params "$ck" -n 5 --threads 1 -o "$work/i1.png" >/dev/null || fail "interpolate --threads 1"
cmp -s "$work/i.png" "$work/i1.png" || fail "interpolate differs between thread counts"

# discrete latents: one row per state (as sample --states); without an encoder, the states alone
"$vaec" interpolate "$mix" --params "$mck" -o "$work/s.png" >"$work/out" || fail "interpolate mixture exited with $?"
grep -q "discrete" "$work/out" || fail "interpolate of a mixture does not say why it draws states: $(cat "$work/out")"
"$vaec" sample "$mix" --params "$mck" --states -o "$work/states.png" >/dev/null || fail "sample --states exited with $?"
cmp -s "$work/s.png" "$work/states.png" || fail "interpolate's states differ from sample --states'"
"$vaec" interpolate "$top_srcdir/examples/mixture_prior.vae" --params "$work/mixture_prior/checkpoint.vaeckpt" \
    -o "$work/p.png" >/dev/null || fail "interpolate of mixture_prior (no encoder) exited with $?"
# normal and discrete latents: the paths move z, y stays at the first image's state and takes the second's at the end
"$vaec" interpolate "$gm" --params "$gck" --data fashion-mnist:test -n 4 -o "$work/gi.png" >/dev/null \
    || fail "vaec interpolate fashion_gmvae exited with $?"
[ "$(png_size "$work/gi.png")" = "182 632" ] || fail "fashion_gmvae's grid: $(png_size "$work/gi.png") (4 paths, a blank row, 16 traversals)"
"$vaec" reconstruct "$gm" --params "$gck" --data fashion-mnist:test -n 8 -o "$work/gr.png" >/dev/null \
    || fail "vaec reconstruct fashion_gmvae exited with $?"
for r in 0 1 2 3; do
    "$tiles" "$work/gi.png" $r 1 "$work/gr.png" 1 $((2 * r)) || fail "fashion_gmvae's path $r does not start at its decoded encoding"
    "$tiles" "$work/gi.png" $r 4 "$work/gr.png" 1 $((2 * r + 1)) || fail "fashion_gmvae's path $r does not end at its decoded encoding"
done
"$vaec" interpolate "$cv" --params "$cck" -n 4 -o "$work/ci.png" >/dev/null || fail "vaec interpolate fashion_cvae exited with $?"
"$vaec" reconstruct "$cv" --params "$cck" -n 8 -o "$work/cr.png" >/dev/null || fail "vaec reconstruct fashion_cvae exited with $?"
"$tiles" "$work/ci.png" 0 1 "$work/cr.png" 1 0 || fail "fashion_cvae's path 0 does not start at its decoded encoding"
"$tiles" "$work/ci.png" 0 4 "$work/cr.png" 1 1 || fail "fashion_cvae's path 0 does not end at its decoded encoding"
refused interpolate "$cv" --params "$cck" --data "$work/six.idx" -o "$work/no.png"
grep -q "six.idx has no labels" "$work/err" || fail "fashion_cvae's interpolate without labels: $(cat "$work/err")"
refused interpolate "$gauss" --params "$ck" -n 1 -o "$work/no.png"
refused interpolate "$gauss" --params "$ck" -n 65 -o "$work/no.png"
refused interpolate "$gauss" --params "$ck" -o "$work/no.jpg"
ln -s "$work/i.png" "$work/link.png"
refused interpolate "$gauss" --params "$ck" -o "$work/link.png"
[ -e "$work/no.png" ] || [ -e "$work/no.jpg" ] && fail "a refused interpolate left a file"
# 200 Bernoulli units: 2^200 joint states, no path between them and too many to draw each
refused interpolate "$top_srcdir/examples/fashion_bernoulli200.vae" --params "$work/fashion_bernoulli200/checkpoint.vaeckpt" \
    -o "$work/b200.png"
grep -q "too many joint states" "$work/err" || fail "interpolate of 200 Bernoulli units: $(cat "$work/err")"
[ -e "$work/b200.png" ] && fail "a refused interpolate left $work/b200.png"
"$vaec" encode --help | grep -q "Z.mean" || fail "vaec encode --help"
"$vaec" interpolate --help | grep -q "STEPS" || fail "vaec interpolate --help"
echo "latents: all checks passed"
