/* SHA-256 (src/sha256.c) against the known answers of FIPS 180-2's appendix B
 * and NIST's example values, fed whole and in uneven pieces (the partial block
 * carried across calls); a file's digest is also checked against sha256sum in
 * tests/train_header.sh. */
#include "src/sha256.h"
#include "testutil.h"

static void digest_in_pieces(const char *msg, size_t len, size_t piece, char hex[65]) {
    sha256_ctx c;
    sha256_init(&c);
    for (size_t at = 0; at < len; at += piece) sha256_update(&c, msg + at, len - at < piece ? len - at : piece);
    sha256_hex(&c, hex);
}

static void test_known_answers(void) {
    static const struct {
        const char *msg, *digest;
    } cases[] = {
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", /* 56 bytes: the length spills into a new block */
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
        {"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
         "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (size_t piece = 1; piece <= 65; piece += 16) {
            char hex[65];
            digest_in_pieces(cases[i].msg, strlen(cases[i].msg), piece, hex);
            CU_ASSERT_STRING_EQUAL(hex, cases[i].digest);
        }
}

/* A million 'a's: many blocks, fed 1000 at a time. */
static void test_million_a(void) {
    char block[1000], hex[65];
    memset(block, 'a', sizeof block);
    sha256_ctx c;
    sha256_init(&c);
    for (int i = 0; i < 1000; i++) sha256_update(&c, block, sizeof block);
    sha256_hex(&c, hex);
    CU_ASSERT_STRING_EQUAL(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

static void test_file(void) {
    const char *path = tmp_path(".txt");
    write_file(path, "abc", 3);
    char hex[65];
    CU_ASSERT_EQUAL(sha256_file(path, hex), 0);
    CU_ASSERT_STRING_EQUAL(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    unlink(path);
    CU_ASSERT_EQUAL(sha256_file(path, hex), -1); /* gone */
}

int main(void) {
    static const test_case tests[] = {{"FIPS 180-2 known answers, whole and in pieces", test_known_answers},
                                      {"a million 'a's", test_million_a},
                                      {"a file's digest; a missing file refused", test_file},
                                      {NULL, NULL}};
    return run_suite("sha256", tests);
}
