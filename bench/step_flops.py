#!/usr/bin/python3
"""Floating-point operations per training example of a model's step, counted
from the graph vaec compiles (`vaec check --graph`): 2*m*n*k for every matrix
product of the training step, forward and backward, over the batch.  Products
the backward pass does not need (the gradient of the data) are not in the graph,
so they are not counted.  Elementwise work is left out, as in a GEMM peak.
    bench/step_flops.py VAEC MODEL.vae           ->  MFLOP per example
    bench/step_flops.py VAEC MODEL.vae --shapes  ->  the step's products, one a line
        "M N K TRANS_A TRANS_B GROUP" (GROUP 1: computed at once with the line
        before, as the step does), after a line "params P batch B" (for
        bench/step_floor.c)"""
import re
import subprocess
import sys

shapes_wanted = sys.argv[3:] == ["--shapes"]
if len(sys.argv) != 3 and not shapes_wanted:
    sys.exit("usage: bench/step_flops.py VAEC MODEL.vae [--shapes]")
run = subprocess.run([sys.argv[1], "check", sys.argv[2], "--graph"], capture_output=True, text=True)
if run.returncode != 0:
    sys.exit("step_flops.py: %s check %s failed:\n%s" % (sys.argv[1], sys.argv[2], run.stderr.strip()))
out = run.stdout
shapes, flops, batch, in_step, params, products = {}, 0, None, False, None, []
for line in out.splitlines():
    count = re.match(r"\s*parameters (\d+) in", line)
    if count:
        params = int(count.group(1))
    graph = re.match(r"graph (\S+): batch (\d+)", line)
    if graph:
        in_step = graph.group(1) == "vae_train_step"
        if in_step:
            batch = int(graph.group(2))
        continue
    node = re.match(r"\s*%(\d+) = (\w+) \[(\d+), (\d+)\](?: \(([^)]*)\))?(?: trans (\d) (\d))?", line)
    if not node or not in_step:
        continue
    rows, cols = int(node.group(3)), int(node.group(4))
    shapes[node.group(1)] = (rows, cols)
    if node.group(2) == "matmul":
        a_rows, a_cols = shapes[node.group(5).split(",")[0].strip().lstrip("%")]
        k = a_rows if node.group(6) == "1" else a_cols
        flops += 2 * rows * cols * k
        products.append("%d %d %d %s %s %d" % (rows, cols, k, node.group(6), node.group(7), "with previous" in line))
if not batch or not flops:
    sys.exit("step_flops.py: no training step with products in " + sys.argv[2])
if shapes_wanted:
    if params is None:
        sys.exit("step_flops.py: %s check %s printed no parameter count" % (sys.argv[1], sys.argv[2]))
    print("params %d batch %d" % (params, batch))
    print("\n".join(products))
else:
    print("%.3f" % (flops / batch / 1e6))
