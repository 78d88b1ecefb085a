#!/bin/sh
# vaec fmt: the examples are formatted (what CI runs); formatting is idempotent and
# gives the same model (the same `vaec check --ast`, or for a model that does not
# check the same errors) for every example and golden test input; comments stay
# where they were (tests/fmt/comments.vae: end of line, between declarations, inside
# blocks and calls); files are rewritten whole with their permissions; --check writes
# nothing and names the unformatted; a file that does not parse is left as it is.
. "${top_srcdir:-.}/tests/lib.sh"
cd "$top_srcdir" || fail "cannot enter $top_srcdir"

"$vaec" fmt --check examples/*.vae bench/*.vae >"$work/unformatted" 2>&1 \
    || { cat "$work/unformatted"; fail "these examples are not formatted (vaec fmt FILE formats them)"; }
echo "ok   vaec fmt --check: every file of examples/ and bench/*.vae is formatted"

# What vaec check says about a model, without the places (which formatting moves): a
# diagnostic's file:line:col and the source line and caret under it.
check_words() {
    (cd "$(dirname "$1")" && "$vaec" check --ast "$(basename "$1")" 2>&1) |
        awk 'skip > 0 { skip--; next } /^[^ ]*:[0-9]+:[0-9]+: (error|warning|note): / { sub(/^[^ ]* /, ""); skip = 2 } 1'
}
n=0
mkdir "$work/before" "$work/after"
for f in examples/*.vae bench/*.vae tests/golden/*.vae tests/fmt/comments.vae; do
    name=$(basename "$f")
    cp "$f" "$work/before/$name"
    cp "$f" "$work/after/$name"
    if ! "$vaec" fmt "$work/after/$name" 2>"$work/fmt.err"; then
        # only a file that does not parse may be refused, with vaec check's own messages, and left as it was
        "$vaec" check "$work/after/$name" >/dev/null 2>"$work/check.err"
        grep -q ': error: ' "$work/fmt.err" && diff "$work/check.err" "$work/fmt.err" >/dev/null \
            || { cat "$work/fmt.err"; fail "vaec fmt refused $f without vaec check's diagnostics"; }
        cmp -s "$f" "$work/after/$name" || fail "vaec fmt changed $f, which it refused"
        continue
    fi
    "$vaec" fmt <"$work/after/$name" >"$work/again" || fail "vaec fmt refused its own output for $f"
    cmp -s "$work/after/$name" "$work/again" || { diff "$work/after/$name" "$work/again"; fail "formatting $f twice changes it"; }
    "$vaec" fmt --check "$work/after/$name" >/dev/null || fail "vaec fmt --check calls the formatted $f unformatted"
    check_words "$work/before/$name" >"$work/before.out"
    check_words "$work/after/$name" >"$work/after.out"
    diff "$work/before.out" "$work/after.out" || fail "formatting $f changes what vaec check says of it"
    [ "$(grep -c '#' "$f")" = "$(grep -c '#' "$work/after/$name")" ] || fail "formatting $f loses a comment"
    n=$((n + 1))
done
[ "$n" -ge 40 ] || fail "only $n models formatted"
echo "ok   $n examples and golden inputs: formatted twice gives the same text; vaec check says the same"

# The layout depends on the tokens alone: each example without its comments and blank lines
# formats the same when written all on one line with wider spaces
for f in examples/*.vae; do
    sed 's/#.*//' "$f" | grep -v '^[[:space:]]*$' >"$work/plain.vae"
    tr '\n' ' ' <"$work/plain.vae" | sed 's/ /   /g; s/$/\n/' >"$work/one_line.vae"
    [ "$(wc -l <"$work/one_line.vae")" -eq 1 ] || fail "could not write $f on one line"
    "$vaec" fmt <"$work/plain.vae" >"$work/plain.out" && "$vaec" fmt <"$work/one_line.vae" >"$work/one_line.out" \
        || fail "vaec fmt refused $f on one line"
    cmp -s "$work/plain.out" "$work/one_line.out" || { diff "$work/plain.out" "$work/one_line.out"; fail "$f on one line formats differently"; }
done
echo "ok   every example written on one line formats as it does on its own lines"

diff -u tests/fmt/comments.expected "$work/after/comments.vae" || fail "tests/fmt/comments.vae formats differently"
grep '^#' tests/fmt/comments.vae | while read -r c; do
    grep -qxF "$c" "$work/after/comments.vae" || fail "the comment '$c' is not on a line of its own any more"
done || exit 1
grep -q '^data x\[4\] : binary  *# end of a data line$' "$work/after/comments.vae" || fail "an end-of-line comment moved"
grep -q '^    h = relu(dense(x,  # inside a call$' "$work/after/comments.vae" || fail "a comment inside a call moved"
grep -q '^    # last in a block$' "$work/after/comments.vae" || fail "the comment that ends a block moved"
echo "ok   comments stay at the end of their line, between declarations, inside blocks and calls"

# --check: names the file, exits 1, writes nothing; stdin and - read the model and write stdout
cp tests/fmt/comments.vae "$work/m.vae"
chmod 640 "$work/m.vae"
"$vaec" fmt --check "$work/m.vae" examples/fashion_gauss.vae >"$work/out" && fail "--check exits 0 on an unformatted file"
[ "$(cat "$work/out")" = "$work/m.vae" ] || { cat "$work/out"; fail "--check does not name the unformatted file alone"; }
cmp -s tests/fmt/comments.vae "$work/m.vae" || fail "--check wrote the file"
"$vaec" fmt <"$work/m.vae" >"$work/stdin.out" || fail "vaec fmt < FILE failed"
"$vaec" fmt - <"$work/m.vae" >"$work/dash.out" || fail "vaec fmt - < FILE failed"
cmp -s "$work/stdin.out" tests/fmt/comments.expected && cmp -s "$work/dash.out" tests/fmt/comments.expected \
    || fail "vaec fmt on stdin does not write the formatted model on stdout"
"$vaec" fmt "$work/m.vae" >"$work/out" || fail "vaec fmt FILE failed"
[ ! -s "$work/out" ] || fail "vaec fmt FILE printed on stdout"
cmp -s "$work/m.vae" tests/fmt/comments.expected || fail "vaec fmt FILE did not rewrite the file"
[ "$(stat -c %a "$work/m.vae")" = 640 ] || fail "vaec fmt FILE changed the file's permissions"
[ -z "$(ls "$work" | grep tmp)" ] || fail "vaec fmt left a temporary file"
echo "ok   --check names the unformatted file and writes nothing; stdin to stdout; FILE rewritten, permissions kept"

# A file that does not parse: the usual diagnostic, status 1, untouched; the other files are formatted
printf 'model m\ndata x[4] binary\n' >"$work/bad.vae"
cp tests/fmt/comments.vae "$work/good.vae"
"$vaec" fmt "$work/bad.vae" "$work/good.vae" 2>"$work/err" && fail "vaec fmt exits 0 on a file that does not parse"
grep -q "bad.vae:2:11: error: " "$work/err" && grep -q '^              \^$' "$work/err" \
    || { cat "$work/err"; fail "no file:line:col diagnostic with a caret"; }
printf 'model m\ndata x[4] binary\n' | cmp -s - "$work/bad.vae" || fail "vaec fmt changed a file that does not parse"
cmp -s "$work/good.vae" tests/fmt/comments.expected || fail "the file after a refused one was not formatted"
cp tests/fmt/comments.vae "$work/target.vae"
ln -s target.vae "$work/link.vae"
"$vaec" fmt "$work/link.vae" 2>"$work/err" && fail "vaec fmt wrote through a symbolic link"
grep -q "link.vae: is a symbolic link" "$work/err" || { cat "$work/err"; fail "a symbolic link is refused without saying so"; }
cmp -s "$work/target.vae" tests/fmt/comments.vae || fail "vaec fmt changed the target of a symbolic link it refused"
"$vaec" fmt --bogus "$work/good.vae" 2>"$work/err" && fail "an unknown option is accepted"
grep -q "unknown option '--bogus'" "$work/err" || fail "an unknown option is not named"
echo "ok   a file that does not parse is refused with file:line:col and left as it is; so is a symbolic link, by name"
