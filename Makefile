# raftlab: every entry point. See README.md.
#   make                 build the kit (labrpc, grader against labs/ and solution/)
#   make grade           grade labs/ (LAB=3A|3B|3C|3D, RUN=<test>, IMPL=solution|labs|<dir>)
#   make test            the kit's own test suite (what CI runs; TEST_MODE=quick skips the long steps)
#   VALGRIND=memcheck    with make grade: run each test under valgrind memcheck
#   make bench           labrpc benchmarks
#   make deps            check (and install with apt where possible) the dependencies

CC      ?= cc
WERROR  ?= 1
CFLAGS  ?= -O2
BUILD   ?= build
IMPL    ?= labs
LAB     ?=
RUN     ?=

WARN := -Wall -Wextra -std=c11 -g -pthread
ifeq ($(WERROR),1)
WARN += -Werror
endif
CPPFLAGS += -D_GNU_SOURCE -MMD -MP -Ilabrpc -Igrader
ALL_CFLAGS = $(WARN) $(CFLAGS)
LDLIBS  += -pthread
CUNIT_LIBS := -lcunit

# Folder name for the implementation under test: labs, solution, or a path.
IMPL_DIR  := $(patsubst %/,%,$(IMPL))
IMPL_TAG  := $(subst /,_,$(IMPL_DIR))

LABRPC_SRC := $(wildcard labrpc/*.c)
LABRPC_OBJ := $(LABRPC_SRC:%.c=$(BUILD)/%.o)
LABRPC_LIB := $(BUILD)/liblabrpc.a
LABRPC_TEST_SRC := $(wildcard labrpc/tests/*.c)
LABRPC_TEST_OBJ := $(LABRPC_TEST_SRC:%.c=$(BUILD)/%.o)
LABRPC_TEST := $(BUILD)/labrpc_test
LABRPC_BENCH := $(BUILD)/labrpc_bench

GRADER_SRC := $(filter-out grader/bench%.c,$(wildcard grader/*.c))
GRADER_OBJ := $(GRADER_SRC:%.c=$(BUILD)/%.o)
IMPL_SRC   := $(wildcard $(IMPL_DIR)/raft/*.c)
IMPL_OBJ   := $(IMPL_SRC:%.c=$(BUILD)/impl/%.o)
RAFT_TEST  := $(BUILD)/$(IMPL_TAG)/raft_test

DEPS_STAMP := $(BUILD)/.deps-ok

.PHONY: all grade test bench deps clean raft_test labrpc_test
all: $(LABRPC_TEST) raft_test

deps: $(DEPS_STAMP)
$(DEPS_STAMP):
	@tools/deps.sh
	@mkdir -p $(@D) && touch $@

$(BUILD)/%.o: %.c | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/impl/%.o: %.c | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -c $< -o $@

$(LABRPC_LIB): $(LABRPC_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(LABRPC_TEST): $(LABRPC_TEST_OBJ) $(LABRPC_LIB)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(CUNIT_LIBS) $(LDLIBS)

$(LABRPC_BENCH): $(BUILD)/labrpc/bench/bench.o $(LABRPC_LIB)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDLIBS)

raft_test: $(RAFT_TEST)
$(RAFT_TEST): $(GRADER_OBJ) $(IMPL_OBJ) $(LABRPC_LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(CUNIT_LIBS) $(LDLIBS)

labrpc_test: $(LABRPC_TEST)

VALGRIND ?=
grade: $(RAFT_TEST)
	@VALGRIND="$(VALGRIND)" grader/grade.sh $(RAFT_TEST) "$(LAB)" "$(RUN)"

# The kit's own suite: labrpc's tests, then the Raft tests against the
# solution and the skeleton (both built with -Werror).
test: $(LABRPC_TEST)
	@$(MAKE) --no-print-directory raft_test IMPL=solution
	@$(MAKE) --no-print-directory raft_test IMPL=labs
	@BUILD=$(BUILD) tools/test.sh $(TEST_MODE)

bench: $(LABRPC_BENCH)
	@$(LABRPC_BENCH)

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
