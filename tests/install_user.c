/* A program built against the installed compiler library through pkg-config
 * (tests/install.sh: cc install_user.c $(pkg-config --cflags --libs vaec)):
 * parses and checks a model, then prints its name and parameters as vaec check
 * lists them.  Exit 1 when the model has errors (printed). */
#include <stdio.h>

#include <vae/compiler.h>

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s MODEL.vae\n", argv[0]);
        return 2;
    }
    vae_unit *u = vae_unit_load(argv[1], stderr);
    if (!u) return 1;
    printf("model %s\n", vae_unit_name(u));
    const char *name;
    int ndims;
    const int *dims;
    for (int i = 0; (name = vae_unit_tensor(u, i, &ndims, &dims, NULL)); i++) {
        printf("%s [", name);
        for (int d = 0; d < ndims; d++) printf("%s%d", d ? ", " : "", dims[d]);
        printf("]\n");
    }
    vae_unit_free(u);
    return 0;
}
