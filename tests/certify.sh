#!/bin/sh
# vaec certify: every certificate holds at the default draws (10000 per estimator: a bias of
# 0.06 standard deviations of one draw in any coordinate gives |z| >= 4 with probability 0.98);
# the table has a row per certified estimator; rws's measured bias shrinks with its samples; a failed
# certificate is exit status 1; bad options are refused with their name.
. "${top_srcdir:-.}/tests/lib.sh"
"$vaec" certify >"$work/table" 2>"$work/err" || { cat "$work/table" "$work/err"; fail "vaec certify: a certificate fails"; }
cat "$work/table"
for row in 'arm  *bernoulli' 'disarm  *bernoulli.*variance <= arm' 'reinforce(samples: 2, baseline: loo)  *categorical.*variance <=' \
    'gumbel(temperature: 0.5)  *bernoulli.*biased (measured)' 'reparam(gradient: stl) .*variance at the posterior .*(zero)' \
    'iwae(samples: 3, gradient: dreg) .*unbiased .*(zero)' 'vimco(samples: 3)  *categorical.*unbiased.*IWAE bound' \
    'exact  *categorical.*unbiased.*log p(x)' 'prior(samples: 2)  *categorical.*unbiased.*prior bound' \
    'rws(samples: 2)  *categorical.*biased (measured).*wake' 'renyi(samples: 3, alpha: 1) .*unbiased' \
    'renyi(samples: 3, alpha: 0) .*unbiased .*vs iwae(samples: 3)' \
    'renyi(samples: 3, alpha: 0.5) .*the bound is log p(x) on every draw' \
    'disarm(samples: 2)  *bernoulli.*unbiased .* vs vimco(samples: 2)'; do
    grep -q -- "^$row" "$work/table" || fail "vaec certify's table has no row matching '$row'"
done
[ "$(grep -c 'unbiased |z| < 4' "$work/table")" -ge 17 ] || fail "fewer than 17 unbiased certificates"
# reweighted wake-sleep's bias (self-normalised weights) shrinks as its samples grow, on both models
# the bias column of a row: the table is printf's fixed widths (%-38s %-16s %8.2f %8.4f ...)
bias() { grep -- "^$1  *$2" "$work/table" | cut -c66-73 | tr -d ' '; }
for pair in 'rws(samples: 2)|rws(samples: 10)|categorical' 'rws(samples: 3)|rws(samples: 30)|linear-gaussian'; do
    few=$(bias "${pair%%|*}" "${pair##*|}"); rest=${pair#*|}; many=$(bias "${rest%%|*}" "${pair##*|}")
    awk -v a="$many" -v b="$few" 'BEGIN { exit !(a > 0 && a < b) }' || fail "rws: bias $many with more samples, $few with fewer (${pair##*|})"
done
grep -q "every certificate holds" "$work/table" || fail "no verdict line"
echo "ok   vaec certify: every certificate holds"
# a threshold no estimator meets: the certificate fails, status 1
"$vaec" certify disarm --draws 500 --z-max 0.01 >"$work/fail" 2>&1 && fail "a failed certificate exits 0"
grep -q "BIASED" "$work/fail" && grep -q "a certificate FAILED" "$work/fail" || { cat "$work/fail"; fail "no FAILED verdict"; }
echo "ok   a failed certificate is exit status 1"
"$vaec" certify --draws 1.5 >"$work/bad" 2>&1 && fail "--draws 1.5 accepted"
grep -q "draws expects a whole number" "$work/bad" || { cat "$work/bad"; fail "--draws 1.5: no clear message"; }
"$vaec" certify nosuch >"$work/bad" 2>&1 && fail "an unknown estimator accepted"
grep -q "no certificate for estimator 'nosuch'" "$work/bad" || { cat "$work/bad"; fail "unknown estimator: no clear message"; }
echo "ok   bad options refused"
