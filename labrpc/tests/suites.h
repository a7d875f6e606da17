/* The labrpc module's CUnit suites, one per file, gathered by main.c. */
#ifndef RAFTLAB_LABRPC_SUITES_H
#define RAFTLAB_LABRPC_SUITES_H

typedef struct suite_test {
    const char *name;
    void (*fn)(void);
} suite_test;

typedef struct suite_def {
    const char *name;
    const suite_test *tests;    /* ends with { NULL, NULL } */
} suite_def;

extern const suite_def labrpc_suite, codec_suite, persister_suite;

#endif
