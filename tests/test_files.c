/* Output files and checkpoints that cannot be torn or mistaken (runtime/checkpoint.c):
 *  - an output is written only to a new name or over a regular file: a symbolic
 *    link, a device or a folder is refused by name and left as it was;
 *  - a discarded output, and one interrupted by SIGTERM or SIGINT, leaves no
 *    temporary file;
 *  - a checkpoint that is a folder, cut short, or holds NaN or infinite
 *    parameters is refused with the file's and the tensor's name. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "testutil.h"
#include "vae/runtime.h"

static const vr_tensor_info TENSORS[2] = {{"enc.w", 2, {2, 3}, 6}, {"dec.scale", 1, {3}, 3}};

static int exists(const char *path) {
    struct stat st;
    return lstat(path, &st) == 0;
}

static void test_outputs_only_over_regular_files(void) {
    char err[8192];
    const char *target = tmp_path(".target"), *link = tmp_path(".link"), *dir = tmp_path(".dir");
    write_file(target, "keep", 4);
    CU_ASSERT_EQUAL_FATAL(symlink(target, link), 0);
    CU_ASSERT_EQUAL_FATAL(mkdir(dir, 0777), 0);
    vr_output out;
    CU_ASSERT_EQUAL(vr_output_open(&out, link, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, link));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "symbolic link"));
    CU_ASSERT_EQUAL(vr_output_open(&out, "/dev/null", err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "/dev/null: is a device"));
    CU_ASSERT_EQUAL(vr_output_open(&out, dir, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "is a folder"));
    float p[9] = {0};
    CU_ASSERT_EQUAL(vr_checkpoint_save(link, "m", TENSORS, 2, p, NULL, NULL, 0, err, sizeof err), -1);
    struct stat st;
    CU_ASSERT_EQUAL(lstat(link, &st), 0);
    CU_ASSERT_TRUE(S_ISLNK(st.st_mode)); /* still the link, and its target untouched */
    CU_ASSERT_EQUAL(stat(target, &st), 0);
    CU_ASSERT_EQUAL(st.st_size, 4);
    /* a regular file is replaced whole; a discarded output leaves nothing */
    CU_ASSERT_EQUAL_FATAL(vr_output_open(&out, target, err, sizeof err), 0);
    fputs("new text", out.f);
    CU_ASSERT_TRUE(exists(out.tmp));
    CU_ASSERT_EQUAL(vr_output_commit(&out, err, sizeof err), 0);
    CU_ASSERT_EQUAL(stat(target, &st), 0);
    CU_ASSERT_EQUAL(st.st_size, 8);
    CU_ASSERT_FALSE(exists(out.tmp));
    CU_ASSERT_EQUAL_FATAL(vr_output_open(&out, target, err, sizeof err), 0);
    fputs("half", out.f);
    vr_output_discard(&out);
    CU_ASSERT_FALSE(exists(out.tmp));
    CU_ASSERT_EQUAL(stat(target, &st), 0);
    CU_ASSERT_EQUAL(st.st_size, 8);
    remove(link);
    remove(target);
    rmdir(dir);
}

/* A child opens an output and is killed by sig before committing it: its
 * temporary file must be gone, and the child must have died of the signal. */
static void interrupted_output_leaves_nothing(int sig) {
    const char *path = tmp_path(".out");
    char tmp[600];
    int fds[2];
    CU_ASSERT_EQUAL_FATAL(pipe(fds), 0);
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        char err[8192];
        vr_output out;
        if (vr_output_open(&out, path, err, sizeof err)) _exit(3);
        fputs("partial", out.f);
        fflush(out.f);
        if (write(fds[1], "x", 1) != 1) _exit(4);
        pause(); /* until the parent's signal */
        _exit(5);
    }
    close(fds[1]);
    char c;
    CU_ASSERT_EQUAL(read(fds[0], &c, 1), 1);
    close(fds[0]);
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)pid);
    CU_ASSERT_TRUE(exists(tmp)); /* the child's output is in progress */
    kill(pid, sig);
    int status = 0;
    waitpid(pid, &status, 0);
    CU_ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == sig);
    CU_ASSERT_FALSE(exists(tmp));
    CU_ASSERT_FALSE(exists(path));
    remove(tmp);
}

static void test_signals_remove_temporary_files(void) {
    interrupted_output_leaves_nothing(SIGTERM);
    interrupted_output_leaves_nothing(SIGINT);
}

static void test_checkpoint_refusals(void) {
    char err[8192];
    float p[9], q[9];
    for (int i = 0; i < 9; i++) p[i] = (float)i;
    const char *path = tmp_path(".vaeckpt"), *dir = tmp_path(".vaeckpt");
    /* a folder: refused by name (it aborted before) */
    CU_ASSERT_EQUAL_FATAL(mkdir(dir, 0777), 0);
    CU_ASSERT_EQUAL(vr_checkpoint_load(dir, TENSORS, 2, q, NULL, NULL, NULL, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, dir));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "is a folder"));
    rmdir(dir);
    /* NaN, then infinity, in the second tensor: refused with its name */
    p[7] = NAN;
    CU_ASSERT_EQUAL_FATAL(vr_checkpoint_save(path, "m", TENSORS, 2, p, NULL, NULL, 0, err, sizeof err), 0);
    CU_ASSERT_EQUAL(vr_checkpoint_load(path, TENSORS, 2, q, NULL, NULL, NULL, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, path));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "'dec.scale' hold NaN"));
    p[7] = -INFINITY;
    CU_ASSERT_EQUAL_FATAL(vr_checkpoint_save(path, "m", TENSORS, 2, p, NULL, NULL, 0, err, sizeof err), 0);
    CU_ASSERT_EQUAL(vr_checkpoint_load(path, TENSORS, 2, q, NULL, NULL, NULL, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "'dec.scale' hold an infinite value"));
    /* cut short anywhere: refused, never read past the end */
    p[7] = 7;
    CU_ASSERT_EQUAL_FATAL(vr_checkpoint_save(path, "m", TENSORS, 2, p, NULL, NULL, 0, err, sizeof err), 0);
    FILE *f = fopen(path, "rb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    unsigned char buf[512];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    for (size_t cut = 0; cut < n; cut += 7) {
        write_file(path, buf, cut);
        CU_ASSERT_EQUAL(vr_checkpoint_load(path, TENSORS, 2, q, NULL, NULL, NULL, err, sizeof err), -1);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, path));
    }
    write_file(path, buf, 6);
    CU_ASSERT_EQUAL(vr_checkpoint_load(path, TENSORS, 2, q, NULL, NULL, NULL, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "truncated"));
    remove(path);
}

int main(void) {
    static const test_case tests[] = {
        {"outputs only over regular files", test_outputs_only_over_regular_files},
        {"signals remove temporary files", test_signals_remove_temporary_files},
        {"checkpoint refusals: folder, NaN, cut short", test_checkpoint_refusals},
        {NULL, NULL},
    };
    return run_suite("files", tests);
}
