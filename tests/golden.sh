#!/bin/sh
# Golden tests: every malformed model in tests/golden/ must make `vaec check`
# exit with status 1 and print exactly the messages of its .expected file
# (file:line:col, the source line, the caret, the reason), and nothing on stdout.
top_srcdir=${top_srcdir:-.}
top_builddir=${top_builddir:-.}
vaec="$(cd "$top_builddir" && pwd)/vaec"
status=0
count=0
for model in "$top_srcdir"/tests/golden/*.vae; do
    name=$(basename "$model" .vae)
    expected="${model%.vae}.expected"
    out=$(mktemp)
    err=$(mktemp)
    # run from the source folder so that the file names in messages are stable
    (cd "$top_srcdir" && "$vaec" check "tests/golden/$name.vae") >"$out" 2>"$err"
    rc=$?
    if [ "$rc" -ne 1 ]; then
        echo "FAIL $name: exit status $rc, expected 1"
        status=1
    elif [ -s "$out" ]; then
        echo "FAIL $name: printed on stdout"
        status=1
    elif ! diff -u "$expected" "$err"; then
        echo "FAIL $name: messages differ from $expected"
        status=1
    else
        echo "ok   $name"
    fi
    rm -f "$out" "$err"
    count=$((count + 1))
done
[ "$count" -gt 0 ] || { echo "FAIL: no golden models found"; exit 1; }
exit $status
