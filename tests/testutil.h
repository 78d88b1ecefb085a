/* Small helpers shared by the CUnit test programs. */
#ifndef VAE_TESTUTIL_H
#define VAE_TESTUTIL_H

#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    const char *name;
    void (*fn)(void);
} test_case;

/* Runs one suite; the process exits non-zero when any assertion failed. */
static inline int run_suite(const char *name, const test_case *tests) {
    if (CU_initialize_registry() != CUE_SUCCESS) return 2;
    CU_pSuite s = CU_add_suite(name, NULL, NULL);
    for (const test_case *t = tests; t->name; t++) CU_add_test(s, t->name, t->fn);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    CU_cleanup_registry();
    return failed ? 1 : 0;
}

/* A temporary file path under $TMPDIR, unique per process and call. */
static inline const char *tmp_path(const char *suffix) {
    static char buf[8][512];
    static int next;
    char *p = buf[next++ % 8];
    const char *dir = getenv("TMPDIR");
    static int counter;
    snprintf(p, 512, "%s/vaec-test-%ld-%d%s", dir && *dir ? dir : "/tmp", (long)getpid(), counter++, suffix);
    return p;
}

static inline void write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(fwrite(data, 1, n, f), n);
    fclose(f);
}

#endif
