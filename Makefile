# raftlab: every entry point. See README.md.
#   make                 build the kit (labrpc, grader against labs/ and solution/)
#   make grade           grade labs/ with build/grade (see `build/grade --help`):
#                          LAB=3A|3B|3C|3D  RUN=<names or patterns>  IMPL=labs|solution|<dir>
#                          VALGRIND=memcheck|helgrind|drd  SAN=address|undefined|thread
#                          REPEAT=N JOBS=J  POINTS=<file>  JSON= JUNIT= GRADESCOPE=<file>
#   make handout         the student tarball: build/raftlab-handout.tar.gz
#   make test            the kit's own test suite (what CI runs; TEST_MODE=quick skips the long steps)
#   make bench           labrpc benchmarks
#   make deps            check (and install with apt where possible) the dependencies

CC      ?= cc
WERROR  ?= 1
CFLAGS  ?= -O2
BUILD   ?= build
TOP     := $(BUILD)
SAN     ?=
# A sanitizer build gets its own folder (objects differ).
ifneq ($(SAN),)
ifeq ($(filter $(SAN),address undefined thread),)
$(error SAN=$(SAN): use address, undefined or thread)
endif
override BUILD := $(TOP)/san-$(SAN)
CFLAGS  += -fsanitize=$(SAN) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=$(SAN)
endif
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
include sim/sim.mk

LABRPC_SRC := $(wildcard labrpc/*.c)
LABRPC_OBJ := $(LABRPC_SRC:%.c=$(BUILD)/%.o)
LABRPC_LIB := $(BUILD)/liblabrpc.a
LABRPC_TEST_SRC := $(wildcard labrpc/tests/*.c)
LABRPC_TEST_OBJ := $(LABRPC_TEST_SRC:%.c=$(BUILD)/%.o)
LABRPC_TEST := $(BUILD)/labrpc_test
LABRPC_BENCH := $(BUILD)/labrpc_bench

# grade.c and report.c are the grader program (build/grade), not raft_test.
GRADE_SRC  := grader/grade.c grader/report.c
GRADE_OBJ  := $(GRADE_SRC:%.c=$(TOP)/%.o)
GRADE      := $(TOP)/grade
GRADER_SRC := $(filter-out grader/bench%.c $(GRADE_SRC),$(wildcard grader/*.c))
GRADER_OBJ := $(GRADER_SRC:%.c=$(BUILD)/%.o)
IMPL_SRC   := $(wildcard $(IMPL_DIR)/raft/*.c)
IMPL_OBJ   := $(IMPL_SRC:%.c=$(BUILD)/impl/%.o)
RAFT_TEST  := $(BUILD)/$(IMPL_TAG)/raft_test

DEPS_STAMP := $(BUILD)/.deps-ok

.PHONY: all grade test bench deps clean raft_test raft_test_path labrpc_test handout
all: $(LABRPC_TEST) raft_test $(GRADE)

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
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(CUNIT_LIBS) $(LDLIBS)

$(LABRPC_BENCH): $(BUILD)/labrpc/bench/bench.o $(LABRPC_LIB)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDLIBS)

raft_test: $(RAFT_TEST)
$(RAFT_TEST): $(GRADER_OBJ) $(IMPL_OBJ) $(LABRPC_LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(CUNIT_LIBS) $(LDLIBS)
# For build/grade --impl: builds raft_test and prints its path.
raft_test_path: $(RAFT_TEST)
	@echo $(RAFT_TEST)

# The grader program is built without sanitizers, always in $(TOP).
$(TOP)/grader/grade.o $(TOP)/grader/report.o: $(TOP)/grader/%.o: grader/%.c | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(WARN) -O2 -c $< -o $@
$(GRADE): $(GRADE_OBJ)
	$(CC) $(WARN) -o $@ $^

labrpc_test: $(LABRPC_TEST)

VALGRIND ?=
REPEAT  ?= 1
JOBS    ?= 1
POINTS  ?=
JSON    ?=
JUNIT   ?=
GRADESCOPE ?=
TIMEOUT ?=
grade: $(RAFT_TEST) $(GRADE)
	@$(GRADE) --impl $(IMPL_DIR) --binary $(RAFT_TEST) --lab "$(LAB)" --run "$(RUN)" \
	  --valgrind "$(VALGRIND)" --san "$(SAN)" --repeat $(REPEAT) --jobs $(JOBS) \
	  --points "$(POINTS)" --json "$(JSON)" --junit "$(JUNIT)" --gradescope "$(GRADESCOPE)" \
	  $(if $(TIMEOUT),--timeout $(TIMEOUT))

# The kit's own suite: labrpc's tests, then the Raft tests against the
# solution and the skeleton (both built with -Werror).
test: $(LABRPC_TEST) $(GRADE)
	@$(MAKE) --no-print-directory raft_test IMPL=solution
	@$(MAKE) --no-print-directory raft_test IMPL=labs
	@BUILD=$(BUILD) tools/test.sh $(TEST_MODE)

# The student tarball: the kit from git (committed files only) without
# solution/ and the grader's self-test, which needs solution/.
HANDOUT := $(TOP)/raftlab-handout.tar.gz
handout:
	@mkdir -p $(TOP)
	git archive --format=tar.gz --prefix=raftlab/ -o $(HANDOUT) HEAD -- . \
	  ':(exclude)solution' ':(exclude)grader/selftest' ':(exclude).ci'
	@echo "wrote $(HANDOUT)"

bench: $(LABRPC_BENCH)
	@$(LABRPC_BENCH)

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
