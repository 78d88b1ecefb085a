#!/bin/sh
# make install puts every part where it belongs (into a temporary DESTDIR), a small C
# program builds against the installed compiler library through pkg-config, parses and
# checks a model and prints its parameters as vaec check does; make uninstall removes
# every file again.
. "${top_srcdir:-.}/tests/lib.sh"
dest="$work/dest"
make -C "$top_builddir" install DESTDIR="$dest" >"$work/install.out" 2>&1 || { tail -n 20 "$work/install.out"; fail "make install"; }
has() { # a path under the installed prefix, found by its end
    found=$(find "$dest" -path "*$1" | head -n 1)
    [ -n "$found" ] || fail "make install did not install $1"
}
for f in bin/vaec lib/libvaec.a lib/libvaert.a include/vae/compiler.h include/vae/driver.h include/vae/runtime.h \
    lib/pkgconfig/vaec.pc lib/pkgconfig/vaert.pc man/man1/vaec.1 man/man5/vae.5 \
    share/doc/vaec/README.md share/doc/vaec/docs/language.md share/doc/vaec/docs/estimators.md \
    share/doc/vaec/docs/images/fashion_gauss_samples.png \
    vim/vimfiles/syntax/vae.vim vim/vimfiles/ftdetect/vae.vim vim/vimfiles/ftplugin/vae.vim \
    emacs/site-lisp/vae-mode.el share/vaec/vscode/package.json share/vaec/vscode/syntaxes/vae.tmLanguage.json \
    bash-completion/completions/vaec; do
    has "$f"
done
n_src=$(ls "$top_srcdir"/examples/*.vae | wc -l)
has share/doc/vaec/examples/fashion_gauss.vae
n_inst=$(ls "$(dirname "$found")"/*.vae | wc -l)
[ "$n_src" -eq "$n_inst" ] || fail "$n_inst of the $n_src examples installed"
has bin/vaec
"$found" --version >/dev/null || fail "the installed vaec does not run"
echo "ok   make install: vaec, both libraries and their headers and pkg-config files, man pages, docs, $n_inst examples, editor files, bash completion"

# the installed compiler library, through pkg-config, relocated into DESTDIR
has lib/pkgconfig/vaec.pc
PKG_CONFIG_PATH=$(dirname "$found")
export PKG_CONFIG_PATH
libdir=$(pkg-config --variable=libdir vaec) && includedir=$(pkg-config --variable=includedir vaec) \
    || fail "pkg-config cannot read the installed vaec.pc"
flags=$(pkg-config --define-variable=libdir="$dest$libdir" --define-variable=includedir="$dest$includedir" \
    --cflags --libs vaec) || fail "pkg-config --cflags --libs vaec"
# the compiler vaec was built with; a library built with sanitizers (configure
# --enable-sanitizers) needs them in the program too
${CC:-cc} -std=c11 -Wall -Wextra -Werror ${SAN_FLAGS:-} "$top_srcdir/tests/install_user.c" -o "$work/user" $flags \
    || fail "a program does not build against the installed library with: $flags"
model="$top_srcdir/examples/fashion_mixture.vae"
"$work/user" "$model" >"$work/user.out" || fail "the program built against the installed library fails"
{ echo "model $(sed -n 's/^model //p' "$model")"
  "$vaec" check "$model" | sed -n '/^  parameters/,/^objective/p' | sed '1d;$d' | sed 's/^ *//; s/  *\[/ [/'
} >"$work/check.out"
diff "$work/check.out" "$work/user.out" || fail "the program's parameters differ from vaec check's"
"$work/user" "$work/missing.vae" 2>"$work/err.out" && fail "a missing model is accepted"
grep -q "missing.vae" "$work/err.out" || fail "no message names the missing model"
echo "ok   a program built with pkg-config vaec checks a model and lists its $(($(wc -l <"$work/user.out") - 1)) tensors"

make -C "$top_builddir" uninstall DESTDIR="$dest" >"$work/uninstall.out" 2>&1 || fail "make uninstall"
left=$(find "$dest" -type f)
[ -z "$left" ] || fail "make uninstall left: $left"
echo "ok   make uninstall removes every file"
