/* The JIT's side of the deployment-API test: the same calls as
 * tests/api_user.c, made on the program vaec compiles in memory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vae/compiler.h"

#define N 13

static float pattern(int i, int j, int salt) { return (float)(((i * 131 + j * 17 + salt * 7) % 10) < 4); }

/* As the emitted wrapper: chunks of the graph's batch, the last one padded. */
static void rows(const vr_program *p, float *params, float *arena, const vr_graph *g, long out, int width,
                 const float *in, int in_width, int n, float *result, uint64_t seed) {
    float *buf = calloc((size_t)g->batch * (size_t)(in_width > 0 ? in_width : 1), sizeof(float));
    for (int start = 0; start < n; start += g->batch) {
        int r = n - start < g->batch ? n - start : g->batch;
        for (int i = 0; i < g->batch && in; i++)
            memcpy(buf + (size_t)i * in_width, in + (size_t)(start + (i < r ? i : r - 1)) * in_width,
                   sizeof(float) * (size_t)in_width);
        vr_ctx ctx = {.seed = seed, .step = VR_STEP_EVAL, .example0 = (uint64_t)start};
        g->fn(params, NULL, arena, buf, &ctx);
        memcpy(result + (size_t)start * width, arena + out, sizeof(float) * (size_t)r * (size_t)width);
    }
    free(buf);
    (void)p;
}

/* Each row's ELBO from the evaluation graph, rows padded with the last, as vr_evaluate runs it. */
static void elbo_each(const vr_program *p, float *params, float *arena, const float *x, float *each) {
    const vr_graph *g = &p->eval;
    float *buf = calloc((size_t)g->batch * 784, sizeof(float));
    for (int i = 0; i < g->batch; i++) memcpy(buf + (size_t)i * 784, x + (size_t)(i < N ? i : N - 1) * 784, 784 * sizeof(float));
    vr_ctx ctx = {.seed = 1, .step = VR_STEP_EVAL, .example0 = 0};
    g->fn(params, NULL, arena, buf, &ctx);
    for (int i = 0; i < N; i++) {
        double r = 0;
        for (int s = 0; s < g->samples; s++) r += arena[g->recon_rows + i * g->samples + s];
        each[i] = (float)(r / g->samples - arena[g->kl_rows + i]);
    }
    free(buf);
}

int main(int argc, char **argv) {
    if (argc != 4) return 2;
    vae_unit *u = vae_unit_load(argv[1], stderr);
    if (!u) return 1;
    vae_build_opts o = vae_build_defaults(u);
    o.api = 1;
    vae_program *prog = vae_program_build(u, &o, stderr);
    if (!prog) return 1;
    const vr_program *p = vae_program_runtime(prog);
    float *params = calloc((size_t)p->param_floats, sizeof(float));
    long most = p->eval.arena_floats;
    const vr_graph *gs[] = {&p->encode, &p->decode, &p->sample, &p->iwae, &p->train};
    for (int i = 0; i < 5; i++) most = gs[i]->arena_floats > most ? gs[i]->arena_floats : most;
    float *arena = calloc((size_t)most, sizeof(float));
    char err[512];
    if (vr_checkpoint_load(argv[2], p->tensors, p->ntensors, params, NULL, NULL, NULL, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    static float x[N * 784], enc[N * 40], z[N * 20], dec[N * 784], smp[N * 784];
    for (int i = 0; i < N; i++)
        for (int j = 0; j < 784; j++) x[i * 784 + j] = pattern(i, j, 0);
    for (int i = 0; i < N; i++)
        for (int j = 0; j < 20; j++) z[i * 20 + j] = (pattern(i, j, 1) - 0.4f) * 2;
    rows(p, params, arena, &p->encode, p->api_out_encode, p->encode_width, x, 784, N, enc, 1);
    rows(p, params, arena, &p->decode, p->api_out_decode, p->decode_width, z, 20, N, dec, 1);
    rows(p, params, arena, &p->sample, p->api_out_sample, 784, NULL, 0, N, smp, 77);
    vr_dataset ds = {.n = N, .dim = 784, .f32 = x};
    vr_scores s;
    memset(&s, 0, sizeof s);
    vr_evaluate(p, params, &ds, N, 1, &s);
    float elbo = (float)s.elbo, each[N];
    elbo_each(p, params, arena, x, each);
    FILE *f = fopen(argv[3], "wb");
    fwrite(enc, sizeof(float), N * 40, f);
    fwrite(dec, sizeof(float), N * 784, f);
    fwrite(smp, sizeof(float), N * 784, f);
    fwrite(&elbo, sizeof(float), 1, f);
    fwrite(each, sizeof(float), N, f);
    fclose(f);
    free(params);
    free(arena);
    vae_program_free(prog);
    vae_unit_free(u);
    return 0;
}
