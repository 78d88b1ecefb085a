# The step's floor in sequence: an emitted C trainer (vaec emit-c) whose training
# step keeps only its matrix products, in the step's order, on the step's own
# buffers (parameters, gradients, arena), with Adam after it as usual.  Every
# elementwise kernel, reduction, im2col/col2im and transpose is dropped, so the
# step computes nonsense, fast: what is left is the time of the library's
# products and Adam with the cache misses the real step's order and layout
# give them.  vaec's real step cannot beat it without faster products.
#     awk -f bench/products_only.awk M.c > M_products.c
# Product kernels are the functions emit_c.c names ..._matmulN or
# ..._matmulN_and... (a group); they call the library and nothing else.
/^static void vae_train_step\(/ { in_step = 1; print; next }
in_step && /^}/ { in_step = 0; if (!kept || !dropped) bad = 1 }
in_step && /^    const vae_buffers b = / { print; next }
in_step && /^    [a-z_0-9]*_matmul[0-9]+(_and[0-9]+)*\(&b\);$/ { kept++; print; next }
in_step { dropped++; next }
{ print }
END {
    if (bad || !kept) {
        print "products_only.awk: no training step with products and other kernels found" > "/dev/stderr"
        exit 1
    }
}
