#!/bin/sh
# Hostile models: inputs generated here (no large files in the tree) that
# once crashed or exhausted the front end.  Each must end in a clear message
# naming the file (and line:column where there is one), exit status 1, and no
# signal (status < 128) - or, for the valid ones, in a normal run.
. "${top_srcdir:-.}/tests/lib.sh"
status=0
failures=0
fail() { echo "FAIL $name: $*"; status=1; failures=$((failures + 1)); }
# passed TITLE: "ok   TITLE" when nothing failed since the last title
passed() { [ "$failures" -gt 0 ] || echo "ok   $1"; failures=0; }

# run NAME EXPECTED_STATUS COMMAND...: stdout and stderr in $work/NAME.out and .err
run() {
    name=$1 want=$2
    shift 2
    timeout 60 "$@" >"$work/$name.out" 2>"$work/$name.err"
    rc=$?
    if [ "$rc" -ge 124 ]; then
        fail "killed or timed out (status $rc)"
        head -c 2000 "$work/$name.err"
        return 1
    fi
    [ "$rc" -eq "$want" ] || { fail "exit status $rc, expected $want"; head -c 2000 "$work/$name.err"; return 1; }
    return 0
}

# expect NAME PATTERN: the messages contain PATTERN (grep -E)
expect() {
    grep -Eq -- "$2" "$work/$1.err" || { name=$1; fail "no message matching '$2' in:"; head -c 2000 "$work/$1.err"; }
}

# a model whose encoder computes g with BODY (awk program text printing the body's lines)
model() {
    awk "BEGIN {
        print \"model hostile\"; print \"data x[4] : binary\"; print \"latent z[2] ~ normal(0, 1)\"
        print \"encoder q(z | x) {\"; print \"    h = relu(dense(x, 3))\"; print \"    g = h\"
        $1
        print \"    return normal(mean: dense(g, 2), logvar: dense(h, 2))\"; print \"}\"
        print \"decoder p(x | z) {\"; print \"    return bernoulli(logits: dense(z, 4))\"; print \"}\"
        print \"estimator reparam\" }"
}

# ---- an expression 50,000 terms long (was: the checker overflowed the stack)
model 'printf "    g = h"; for (i = 1; i < 50000; i++) { printf " + h"; if (i % 20 == 0) printf "\n       " } print ""' \
    >"$work/chain.vae"
run chain 1 "$vaec" check "$work/chain.vae" && {
    expect chain "chain.vae:[0-9]+:[0-9]+: error: expression too long: more than 1000 "
    [ "$(grep -c 'error:' "$work/chain.err")" -eq 1 ] || fail "one error expected, got $(grep -c 'error:' "$work/chain.err")"
}
passed "long expression"

# ---- 100,000 parentheses open at once (was: Bison's "memory exhausted")
model 'printf "    g = "; for (i = 0; i < 100000; i++) printf "("; print "h"' >"$work/nest.vae"
run nest 1 "$vaec" check "$work/nest.vae" && {
    expect nest "nest.vae:7:73: error: nested too deeply: more than 64 parentheses"
    [ "$(grep -c 'error:' "$work/nest.err")" -eq 1 ] || fail "one error expected"
}
passed "deep nesting"

# ---- 64 parentheses and 999-node expressions are still models
model 'printf "    g = "; for (i = 0; i < 64; i++) printf "("; printf "h"; for (i = 0; i < 64; i++) printf ")"; print ""
       printf "    g = g"; for (i = 1; i < 500; i++) printf " + h"; print ""' >"$work/limits_ok.vae"
run limits_ok 0 "$vaec" check --ast "$work/limits_ok.vae" && grep -q "^model hostile" "$work/limits_ok.out" \
    || fail "a model at the limits was refused"
passed "at the limits"

# ---- a long chain of maps over many assignments (was: emit-c's memory grew with the
# square of the chain: fusion copied ever longer expression trees)
model 'for (j = 0; j < 10; j++) { printf "    g = g"; for (i = 1; i < 450; i++) printf " + h"; print "" }' >"$work/maps.vae"
if [ -x /usr/bin/time ]; then
    run maps 0 /usr/bin/time -f "maxrss %M" "$vaec" emit-c "$work/maps.vae" -o "$work/maps.c" && {
        kb=$(awk '/^maxrss/ { print $2 }' "$work/maps.err")
        echo "     emit-c of a chain of 4,500 maps: peak RSS $kb KB"
        [ "$kb" -lt 600000 ] || fail "emit-c took $kb KB for a 20 KB model"
    }
else
    run maps 0 "$vaec" emit-c "$work/maps.vae" -o "$work/maps.c"
fi
grep -q "vae_train_step" "$work/maps.c" || fail "no training step in the emitted C"
passed "long chain of maps"

# ---- more assignments in a network than the lowering holds (was: abort())
model 'for (j = 0; j < 300; j++) print "    g = g + h"' >"$work/assigns.vae"
run assigns 1 "$vaec" emit-c "$work/assigns.vae" -o "$work/assigns.c" && {
    expect assigns "assigns.vae:205:5: error: too many assignments in network 'q' \(at most 200\)"
    [ ! -e "$work/assigns.c" ] || fail "emit-c wrote a file"
}
passed "too many assignments"

# ---- shapes whose sizes overflow (was: signed overflow in the checker, then sizes cut to int)
printf 'model m\ndata x[100000000, 100000000, 100000000] : binary\nlatent z[2] ~ normal(0, 1)\nencoder q(z | x) {\n    h = dense(flatten(x), 100000000)\n    return normal(mean: dense(h, 2), logvar: dense(h, 2))\n}\n' >"$work/huge.vae"
run huge 1 "$vaec" check "$work/huge.vae" && {
    expect huge "huge.vae:2:1: error: data 'x' \\[100000000, 100000000, 100000000\\]: 1e\\+24 values per example, more than the 2\\^31 - 1 that vaec can index"
}
model 'print "    g = dense(dense(h, 100000), 100000)"' >"$work/wide.vae"
run wide 1 "$vaec" check "$work/wide.vae" && expect wide "wide.vae:7:[0-9]+: error: parameter .*\\[100000, 100000\\]: 10000000000 values, more than the 2\\^31 - 1 that vaec can index"
passed "huge shapes"

# ---- 40,000 errors: the first 50, then the count of the rest, quickly (was: 81 s)
awk 'BEGIN { print "model m"; for (i = 0; i < 40000; i++) print "data x[0] : binary" }' >"$work/errors.vae"
start=$(date +%s)
run errors 1 "$vaec" check "$work/errors.vae" && {
    [ "$(grep -c ': error:' "$work/errors.err")" -eq 50 ] || fail "$(grep -c ': error:' "$work/errors.err") errors shown, expected 50"
    expect errors "errors.vae: \.\.\. and [0-9,]+ more errors \(only the first 50 are shown\)"
    # the real count: every one of the 40,000 bad dimensions
    expect errors "and 39,950 more errors"
    [ $(($(date +%s) - start)) -le 5 ] || fail "took $(($(date +%s) - start)) s"
}
passed "error cap"

# ---- files that are not models
run zero 1 "$vaec" check /dev/zero && expect zero "^/dev/zero: error: cannot read the model: it is not a regular file"
run dir 1 "$vaec" check "$work" && expect dir "error: cannot read the model: it is a directory"
if mkfifo "$work/fifo" 2>/dev/null; then
    run fifo 1 "$vaec" check "$work/fifo" && expect fifo "fifo: error: cannot read the model: it is not a regular file"
fi
{ echo "model big"; head -c 1100000 /dev/zero | tr '\0' ' '; echo; } >"$work/big.vae"
run big 1 "$vaec" check "$work/big.vae" && expect big "big.vae: error: cannot read the model: it is larger than 1 MiB"
passed "not a model file"

# ---- encodings: a UTF-8 byte-order mark and CRLF line ends are read as the plain file;
# a lone CR, invalid UTF-8 and a NUL byte are refused at their place
model 'print "    g = g + h"' >"$work/plain.vae"
run plain 0 "$vaec" check "$work/plain.vae"
{ printf '\357\273\277'; sed 's/$/\r/' "$work/plain.vae"; } >"$work/bom_crlf.vae"
run bom_crlf 0 "$vaec" check "$work/bom_crlf.vae" && cmp -s "$work/plain.out" "$work/bom_crlf.out" \
    || fail "a byte-order mark and CRLF line ends changed the output"
printf 'model m\rdata x[2] : binary\r' >"$work/cr.vae"
run cr 1 "$vaec" check "$work/cr.vae" && expect cr "cr.vae:1:8: error: a carriage return without a line feed"
printf 'model m\ndata x[2] : binary # caf\351\n' >"$work/latin1.vae"
run latin1 1 "$vaec" check "$work/latin1.vae" && expect latin1 "latin1.vae:2:25: error: the model is not UTF-8 text \(byte 0xe9 here\)"
printf 'model m\ndata x\303\251[2] : binary\n' >"$work/accent.vae"
run accent 1 "$vaec" check "$work/accent.vae" && expect accent "accent.vae:2:7: error: unexpected character 'é'"
printf 'model m\ndata x[2] :\000 binary\n' >"$work/nul.vae"
run nul 1 "$vaec" check "$work/nul.vae" && expect nul "nul.vae:2:12: error: the model is not a text file \(it contains a NUL byte here\)"
passed "encodings"

exit $status
