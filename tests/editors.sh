#!/bin/sh
# The editor files (editors/) cannot drift from the language: each names every
# keyword of the lexer (lexer/lexer.l; and `prior`, which version 1 adds) and every
# layer (parser/check_expr.c LAYERS), distribution and estimator that the checker knows (parser/check*.c).  The
# TextMate grammar and the VS Code manifest parse as JSON; Vim detects *.vae and
# loads the syntax without an error.
. "${top_srcdir:-.}/tests/lib.sh"
ed="$top_srcdir/editors"
files="$ed/vim/syntax/vae.vim $ed/emacs/vae-mode.el $ed/vscode/syntaxes/vae.tmLanguage.json"
keywords=$(sed -n 's/^"\([a-z_]*\)"[[:space:]]*{ *return T_.*/\1/p' "$top_srcdir/lexer/lexer.l")
checker=$(grep -ho 'strcmp(f, "[a-z_0-9]*")' "$top_srcdir"/parser/check*.c | sed 's/.*"\(.*\)")/\1/'
    sed -n 's/^ *{"\([a-z_0-9]*\)", LAYER_.*/\1/p' "$top_srcdir"/parser/check*.c
    sed -n 's/^ *{"\([a-z_]*\)", EST_.*/\1/p' "$top_srcdir"/parser/check*.c)
[ "$(echo "$keywords" | wc -w)" -ge 10 ] || fail "found only these keywords in lexer/lexer.l: $keywords"
[ "$(echo "$checker" | wc -w)" -ge 20 ] || fail "found only these names in parser/check*.c: $checker"
for f in $files; do
    [ -f "$f" ] || fail "$f is missing"
    for w in $keywords prior $checker; do
        grep -qw -- "$w" "$f" || fail "$f does not name '$w'"
    done
done
echo "ok   the editor files name all $(echo $keywords prior $checker | tr ' ' '\n' | sort -u | wc -l) words of the lexer and the checker"

if command -v python3 >/dev/null; then
    for j in "$ed/vscode/syntaxes/vae.tmLanguage.json" "$ed/vscode/package.json" "$ed/vscode/language-configuration.json"; do
        python3 -m json.tool "$j" >/dev/null || fail "$j is not valid JSON"
    done
    echo "ok   the TextMate grammar and the VS Code files are valid JSON"
fi
if command -v vim >/dev/null; then
    cp "$top_srcdir/examples/fashion_gauss.vae" "$work/m.vae"
    vim -Nu NONE -i NONE -es -c "set rtp^=$ed/vim" -c 'filetype plugin on' -c 'syntax on' -c "edit $work/m.vae" \
        -c 'if &filetype !=# "vae" || b:current_syntax !=# "vae" || &commentstring !=# "# %s" | cquit | endif' \
        -c 'redir! > '"$work/vim.out" -c 'echo synIDattr(synID(2, 1, 1), "name")' -c 'redir END' -c 'qall!' \
        </dev/null >/dev/null 2>&1 || fail "vim does not detect *.vae, or its syntax file fails to load"
    grep -qx vaeKeyword "$work/vim.out" || { cat "$work/vim.out"; fail "vim does not highlight 'model' as a keyword"; }
    echo "ok   vim detects *.vae and highlights it"
fi
