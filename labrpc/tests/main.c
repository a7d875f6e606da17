/* labrpc_test: the labrpc module's test program.
 *   labrpc_test            run every test in this process
 *   labrpc_test --list     print the tests as suite/test, one a line
 *   labrpc_test NAME...    run the named tests (suite/test, or a suite)
 * Exit status 0 only if every test that ran passed. tools/test.sh runs each
 * test in its own process with a time limit, since CUnit has neither. */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <string.h>

#include "suites.h"

static const suite_def *const suites[] = { &codec_suite, &persister_suite, &labrpc_suite };
#define NSUITES (sizeof suites / sizeof suites[0])

/* Does "suite/test" or "suite" select this test? An empty list selects all. */
static int selected(const char *suite, const char *test, int argc, char **argv)
{
    if (argc == 0)
        return 1;
    for (int i = 0; i < argc; i++) {
        size_t n = strlen(suite);
        if (strcmp(argv[i], suite) == 0)
            return 1;
        if (strncmp(argv[i], suite, n) == 0 && argv[i][n] == '/' && strcmp(argv[i] + n + 1, test) == 0)
            return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--list") == 0) {
        for (size_t s = 0; s < NSUITES; s++)
            for (const suite_test *t = suites[s]->tests; t->name; t++)
                printf("%s/%s\n", suites[s]->name, t->name);
        return 0;
    }
    if (CU_initialize_registry() != CUE_SUCCESS) {
        fprintf(stderr, "labrpc_test: cannot start CUnit: %s\n", CU_get_error_msg());
        return 2;
    }
    int added = 0;
    for (size_t s = 0; s < NSUITES; s++) {
        CU_pSuite suite = NULL;
        for (const suite_test *t = suites[s]->tests; t->name; t++) {
            if (!selected(suites[s]->name, t->name, argc - 1, argv + 1))
                continue;
            if (!suite && !(suite = CU_add_suite(suites[s]->name, NULL, NULL)))
                goto cunit_error;
            if (!CU_add_test(suite, t->name, t->fn))
                goto cunit_error;
            added++;
        }
    }
    if (added == 0) {
        fprintf(stderr, "labrpc_test: no test matches; see labrpc_test --list\n");
        CU_cleanup_registry();
        return 2;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    if (CU_basic_run_tests() != CUE_SUCCESS)
        goto cunit_error;
    /* CU_basic_run_tests succeeds even when tests fail: count them. */
    unsigned failed = CU_get_number_of_tests_failed();
    CU_cleanup_registry();
    return failed ? 1 : 0;
cunit_error:
    fprintf(stderr, "labrpc_test: CUnit error: %s\n", CU_get_error_msg());
    CU_cleanup_registry();
    return 2;
}
