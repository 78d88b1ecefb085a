# Sourced by the shell tests: where the sources and the built vaec are, a
# scratch folder removed at exit, and fail (a test may define its own after).
top_srcdir=${top_srcdir:-.}
top_builddir=${top_builddir:-.}
vaec="$(cd "$top_builddir" && pwd)/vaec"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
