# lincheck.mk: the linearizability checker of the KV stage (grader/lincheck/),
# included from the Makefile.
#   $(BUILD)/lincheck         the command-line checker (lincheck --help)
#   $(BUILD)/lincheck_test    its CUnit tests
#   $(BUILD)/lincheck_bench   timings on histories shaped like the KV tests
# LINCHECK_OBJ is the library, for the KV test harness to link.
# Include it after sim/sim.mk (which may change $(BUILD)).

# The rules here must not become make's default goal (that is `all`).
lincheck_goal := $(.DEFAULT_GOAL)

LINCHECK_OBJ := $(BUILD)/grader/lincheck/lincheck.o $(BUILD)/grader/lincheck/history.o
LINCHECK_GEN_OBJ := $(BUILD)/grader/lincheck/gen.o
LINCHECK := $(BUILD)/lincheck
LINCHECK_TEST := $(BUILD)/lincheck_test
LINCHECK_BENCH := $(BUILD)/lincheck_bench

$(LINCHECK): $(BUILD)/grader/lincheck/main.o $(LINCHECK_OBJ)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^

$(LINCHECK_TEST): $(BUILD)/grader/lincheck/tests/test_lincheck.o $(LINCHECK_GEN_OBJ) $(LINCHECK_OBJ)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(CUNIT_LIBS)

$(LINCHECK_BENCH): $(BUILD)/grader/lincheck/bench.o $(LINCHECK_GEN_OBJ) $(LINCHECK_OBJ)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^

.PHONY: lincheck lincheck_test lincheck_bench
lincheck: $(LINCHECK)
lincheck_test: $(LINCHECK_TEST)
lincheck_bench: $(LINCHECK_BENCH)

.DEFAULT_GOAL := $(lincheck_goal)
