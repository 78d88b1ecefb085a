#!/bin/sh
# The step's products by oneDNN and by LIBXSMM (issue 25, "products specialised to their
# shapes"): builds bench/small_gemm.c against Debian's libdnnl-dev and libxsmm-dev (installed
# if missing, with OpenBLAS behind libxsmm_sgemm's large shapes) and runs it on one pinned core.
#   bench/small_gemm.sh [REPEATS]
set -e
cd "$(dirname "$0")/.."
missing=""
for p in libdnnl-dev libxsmm-dev libopenblas-dev; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $missing
fi
mkdir -p bench/out
cc -O2 -std=c11 bench/small_gemm.c -o bench/out/small_gemm -ldnnl -lxsmm -lopenblas -lm -lpthread -ldl
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), load $(cut -d' ' -f1-3 /proc/loadavg)"
OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 taskset -c 0 bench/out/small_gemm "${1:-30}"
