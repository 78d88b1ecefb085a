#!/bin/sh
# The man pages cannot drift from the program: vaec(1) names every command of
# `vaec --help` and every option that vaec's option parsers (src/vaec.c,
# src/picture_commands.c, src/latent_commands.c, src/runs.c, src/fmt.c, src/certify.c) take, and no
# option they do not take; vae(5)'s example checks; both pages render without a warning.
. "${top_srcdir:-.}/tests/lib.sh"
page="$top_srcdir/man/vaec.1"
sed 's/\\-/-/g; s/\\f[BIRP]//g' "$page" >"$work/page" || fail "cannot read $page"
commands=$("$vaec" --help | sed -n 's/^  \([a-z][a-z-]*\)  .*/\1/p')
[ "$(echo "$commands" | wc -w)" -ge 8 ] || fail "found only these commands in vaec --help: $commands"
for c in $commands; do
    grep -q "^\.B $c " "$work/page" || fail "vaec.1 has no entry for the command '$c'"
done
options=$(grep -ho '"-[-a-z][a-z-]*"' "$top_srcdir/src/vaec.c" "$top_srcdir/src/picture_commands.c" \
    "$top_srcdir/src/latent_commands.c" "$top_srcdir/src/runs.c" "$top_srcdir/src/fmt.c" "$top_srcdir/src/certify.c" \
    "$top_srcdir/runtime/options.c" |
    tr -d '"' | sort -u)
[ "$(echo "$options" | wc -w)" -ge 20 ] || fail "found only these options in the sources: $options"
for o in $options; do
    grep -q -- "$o\>" "$work/page" || fail "vaec.1 does not name the option '$o'"
done
for o in $(grep -o -- '--[a-z][a-z-]*' "$work/page" | sort -u); do
    echo "$options" | grep -qx -- "$o" || fail "vaec.1 names '$o', which vaec does not take"
done
echo "ok   vaec.1 names all $(echo $commands | wc -w) commands and $(echo $options | wc -w) options, and no other option"
sed -n '/^\.nf/,/^\.fi/p' "$top_srcdir/man/vae.5" | sed '1d;$d' >"$work/example.vae"
"$vaec" check "$work/example.vae" >"$work/check.out" 2>&1 || { cat "$work/check.out"; fail "vae.5's example does not check"; }
echo "ok   vae.5's example checks"
if command -v groff >/dev/null; then
    for p in "$page" "$top_srcdir/man/vae.5"; do
        groff -man -Tutf8 -ww -z "$p" >"$work/groff.out" 2>&1 && [ ! -s "$work/groff.out" ] \
            || { cat "$work/groff.out"; fail "$p renders with warnings"; }
    done
    echo "ok   both pages render without a warning"
fi
