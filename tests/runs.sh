#!/bin/sh
# vaec runs: the table of the runs under a folder, from a real run's log and
# from hand-written logs of other shapes: an older version's (no "#" lines,
# other columns in another order), a newer one's (unknown keys and columns), one
# cut short mid-row, an empty one, one with its header only; sorted by model
# and best test ELBO; a symbolic link not followed; a missing folder refused.
. "${top_srcdir:-.}/tests/lib.sh"
R="$work/runs"
mkdir -p "$R/group" "$R/empty" "$R/header_only" "$R/old" "$R/new" "$R/mix_a" "$R/group/mix_b"
"$vaec" train "$top_srcdir/examples/fashion_gauss.vae" --epochs 2 --limit 256 --test-limit 64 --out "$R/gauss" \
    >"$work/train.out" 2>&1 || { cat "$work/train.out"; fail "vaec train exited with $?"; }
: >"$R/empty/log.csv"
printf '# model = header_only\nepoch,step,train_ELBO,test_ELBO,seconds\n' >"$R/header_only/log.csv"
# an older log: no "#" lines (the model is the folder's name), seconds before test_ELBO
printf 'epoch,step,train_ELBO,seconds,test_ELBO\n1,10,-210,1.5,-200\n2,20,-160,2.5,-150\n3,30,-150,3,-160\n' >"$R/old/log.csv"
# a newer log: a key and a column vaec does not know, the estimator on a line of its own, a validation column
# (train --validation N: the table gains a column of the best); the last row cut short
printf '# model = newer\n# estimator = elbo\n# flux capacitor = 1.21 GW\nepoch,step,valid_ELBO,test_ELBO,test_exact_logpx,future,seconds\n1,5,-99,-100,-98.5,7,2\n2,10,-90,-95,-93.25,7,2\n3,15,-8' \
    >"$R/new/log.csv"
printf '# model = mix\n# model settings = estimator analytic; samples 1\nepoch,step,test_ELBO,seconds\n1,1,-120,1\n' >"$R/mix_a/log.csv"
printf '# model = mix\n# model settings = estimator reinforce; samples 10\nepoch,step,test_ELBO,seconds\n1,1,-130,1\n2,2,-100,1\n' \
    >"$R/group/mix_b/log.csv"
ln -s "$R/old" "$R/link_to_old"

"$vaec" runs "$R" >"$work/table" 2>"$work/err" || { cat "$work/err"; fail "vaec runs exited with $?"; }
cat "$work/table"
# the row of a run folder: "model estimator epochs final best logpx time best_valid", the fields before its folder
row() { awk -v d="$R/$1" '{ for (i = 1; i <= NF; i++) if ($i == d) { s = $1; for (j = 2; j < i; j++) s = s " " $j; print s } }' "$work/table"; }
[ "$(grep -c "$R" "$work/table")" -eq 7 ] || fail "vaec runs listed $(grep -c "$R" "$work/table") runs, not 7 (the link followed?)"
final=$(awk -F, '!/^#/ && NR > 1 && $1 != "epoch" { f = $4 } END { printf "%.2f", f }' "$R/gauss/log.csv")
best=$(awk -F, '!/^#/ && $1 != "epoch" { if (b == "" || $4 > b) b = $4 } END { printf "%.2f", b }' "$R/gauss/log.csv")
head -n 1 "$work/table" | grep -q "best valid" || fail "no column of the best validation ELBO: $(head -n 1 "$work/table")"
[ "$(row gauss)" = "fashion_gauss reparam 2 $final $best - $(row gauss | cut -d' ' -f7) -" ] || fail "the real run: $(row gauss)"
[ "$(row old)" = "old - 3 -160.00 -150.00 - 7.0 -" ] || fail "the older log: $(row old)"
[ "$(row new)" = "newer elbo 2 -95.00 -95.00 -93.25 4.0 -90.00" ] || fail "the newer log, cut short: $(row new)"
grep "$R/new" "$work/table" | grep -q "cut short" || fail "the cut log has no note"
[ "$(row empty)" = "empty - 0 - - - - -" ] || fail "the empty log: $(row empty)"
grep "$R/header_only" "$work/table" | grep -q "no rows yet" || fail "the header-only log has no note"
[ "$(row mix_a)" = "mix analytic 1 -120.00 -120.00 - 1.0 -" ] || fail "mix_a: $(row mix_a)"
# sorted by model, then best test ELBO: mix_b (-100) before mix_a (-120)
[ "$(awk '$1 == "mix" { print $9 }' "$work/table" | tr '\n' ' ')" = "$R/group/mix_b $R/mix_a " ] \
    || fail "runs of one model are not sorted best first: $(awk '$1 == "mix"' "$work/table")"
[ "$(awk 'NR > 1 { print $1 }' "$work/table" | tr '\n' ' ')" = "empty fashion_gauss header_only mix mix newer old " ] \
    || fail "the runs are not sorted by model"
"$vaec" runs "$R/group" | head -n 1 | grep -q "best valid" && fail "a column of validation for runs without validation"
# a trailing slash; the default runs/ from the current folder
"$vaec" runs "$R/" | grep -q "$R/gauss\$" || fail "vaec runs DIR/ lists its runs as DIR//..."
(cd "$work" && "$vaec" runs) | grep -q " runs/gauss\$" || fail "vaec runs without DIR does not read runs/"
if "$vaec" runs "$work/nowhere" >/dev/null 2>"$work/err"; then fail "vaec runs of a missing folder succeeded"; fi
grep -q "nowhere: No such file" "$work/err" || fail "a missing folder: $(cat "$work/err")"
if "$vaec" runs "$R/old/log.csv" >/dev/null 2>"$work/err"; then fail "vaec runs of a file succeeded"; fi
grep -q "not a folder" "$work/err" || fail "a file as DIR: $(cat "$work/err")"
if "$vaec" runs --bogus >/dev/null 2>&1; then fail "vaec runs --bogus succeeded"; fi
"$vaec" runs --help | grep -q "usage: vaec runs" || fail "vaec runs --help"
echo "runs: all checks passed"
