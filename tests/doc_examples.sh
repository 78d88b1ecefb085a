#!/bin/sh
# Every example of docs/language.md is checked, by its fence's info string (the
# convention is written at the top of the page): a `vae` block checks and is
# formatted; a `vae-error` block fails `vaec check` with exactly the `error` block
# that follows it; `ebnf` is grammar; a fence with any other info string, or none, fails.
. "${top_srcdir:-.}/tests/lib.sh"
doc="$top_srcdir/docs/language.md"
# block_N.vae and block_N.info for each fenced block, in order
awk -v dir="$work" '
    /^```/ && !open { open = 1; n++; info = substr($0, 4); print info > (dir "/block_" n ".info"); close(dir "/block_" n ".info");
                      printf "" > (dir "/block_" n ".vae"); next }
    /^```/ && open  { open = 0; close(dir "/block_" n ".vae"); next }
    open            { print >> (dir "/block_" n ".vae") }
    END             { if (open) { print "unclosed fence"; exit 1 } }' "$doc" || fail "$doc has an unclosed fence"
n=$(ls "$work" | grep -c '^block_.*\.info$')
[ "$n" -ge 4 ] || fail "found only $n fenced blocks in $doc"
checked=0 wrong=0 i=1
while [ "$i" -le "$n" ]; do
    info=$(cat "$work/block_$i.info")
    line=$(head -1 "$work/block_$i.vae")
    mkdir -p "$work/run"
    cp "$work/block_$i.vae" "$work/run/model.vae"
    case $info in
    vae)
        (cd "$work/run" && "$vaec" check model.vae) >"$work/out" 2>&1 || { cat "$work/out"; fail "example $i ($line) does not check"; }
        "$vaec" fmt --check "$work/run/model.vae" >/dev/null \
            || { "$vaec" fmt <"$work/run/model.vae" | diff "$work/run/model.vae" -; fail "example $i ($line) is not formatted"; }
        checked=$((checked + 1)) ;;
    vae-error)
        next=$((i + 1))
        [ "$(cat "$work/block_$next.info" 2>/dev/null)" = error ] || fail "example $i ($line) is not followed by an error block"
        (cd "$work/run" && "$vaec" check model.vae) >"$work/out" 2>"$work/err" && fail "example $i ($line) checks, but is shown as wrong"
        diff -u "$work/block_$next.vae" "$work/err" || fail "example $i ($line): vaec check prints another error than the page"
        wrong=$((wrong + 1))
        i=$next ;;
    ebnf) ;;
    *) fail "block $i ($line) has the info string '$info': vae, vae-error (then error) or ebnf" ;;
    esac
    i=$((i + 1))
done
[ "$checked" -ge 2 ] && [ "$wrong" -ge 1 ] || fail "only $checked examples and $wrong wrong ones found"
echo "ok   docs/language.md: $checked examples check and are formatted; each of the $wrong wrong ones prints the error shown"

# docs/estimators.md has a row with its formula for every estimator of the checker's table
# (parser/check_estimator.c ESTIMATORS), and one naming each of its options but beta (which
# every estimator takes: docs/language.md)
table="$top_srcdir/parser/check_estimator.c"
est="$top_srcdir/docs/estimators.md"
rows=$(sed -n 's/^ *{"\([a-z_]*\)", EST_[A-Z_]*, {\([^}]*\)}.*/\1 \2/p' "$table" | tr -d '",')
[ "$(echo "$rows" | wc -l)" -ge 9 ] || fail "found only these estimators in $table: $rows"
echo "$rows" | while read -r name options; do
    grep -q "^| \`$name[(\`].*| [^|]\{12,\} |" "$est" || fail "$est has no row with a formula for '$name'"
    for o in $options; do
        [ "$o" = beta ] || grep -q "^| \`$name(.*$o:.*| [^|]\{12,\} |" "$est" || fail "$est has no row for $name's option '$o'"
    done
done || exit 1
echo "ok   docs/estimators.md: a row with a formula for each of the $(echo "$rows" | wc -l) estimators and each option"
