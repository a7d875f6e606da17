# raftlab: every entry point. See README.md.
#   make                 build the kit (labrpc, grader against labs/ and solution/)
#   make grade           grade labs/ with build/grade (see `build/grade --help`):
#                          LAB=3A|..|3D|4A|4B|4C  RUN=<names or patterns>  IMPL=labs|solution|<dir>
#                          (labs/: stops after the first stage with a failure; ALL=1 grades all)
#                          VALGRIND=memcheck|helgrind|drd  SAN=address|undefined|thread
#                          REPEAT=N JOBS=J  POINTS=<file>  JSON= JUNIT= GRADESCOPE=<file>
#                          DRY=1: print the tests the variables select; build and run nothing
#                          TRACE=1: a picture (HTML) of passing runs too
#   make handout         the student tarball: build/raftlab-handout.tar.gz
#   make test            the kit's own test suite (what CI runs; TEST_MODE=quick skips the long steps)
#   make bench           benchmarks: labrpc, and lincheck on histories shaped like stage 4's
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
CPPFLAGS += -D_GNU_SOURCE -MMD -MP -Ilabrpc -Igrader -Igrader/raft -Igrader/kvraft -Igrader/lincheck -Igrader/trace
ALL_CFLAGS = $(WARN) $(CFLAGS)
LDLIBS  += -pthread
CUNIT_LIBS := -lcunit

# Folder name for the implementation under test: labs, solution, or a path.
IMPL_DIR  := $(patsubst %/,%,$(IMPL))
IMPL_TAG  := $(subst /,_,$(IMPL_DIR))
include sim/sim.mk
include grader/lincheck/lincheck.mk

LABRPC_SRC := $(wildcard labrpc/*.c)
LABRPC_OBJ := $(LABRPC_SRC:%.c=$(BUILD)/%.o)
LABRPC_LIB := $(BUILD)/liblabrpc.a
LABRPC_TEST_SRC := $(wildcard labrpc/tests/*.c)
LABRPC_TEST_OBJ := $(LABRPC_TEST_SRC:%.c=$(BUILD)/%.o)
LABRPC_TEST := $(BUILD)/labrpc_test
LABRPC_BENCH := $(BUILD)/labrpc_bench

# These are the grader program (build/grade), not raft_test.
GRADE_SRC  := grader/grade.c grader/report.c grader/build.c grader/policy.c grader/sandbox.c \
              grader/trace/html.c
GRADE_OBJ  := $(GRADE_SRC:%.c=$(TOP)/%.o)
GRADE      := $(TOP)/grade
# raft_test: the shared main (grader/*.c) and each lab's harness and tests.
GRADER_SRC := $(filter-out $(GRADE_SRC),$(wildcard grader/*.c)) $(wildcard grader/raft/*.c) \
              $(wildcard grader/kvraft/*.c) grader/trace/trace.c
GRADER_OBJ := $(GRADER_SRC:%.c=$(BUILD)/%.o) $(LINCHECK_OBJ)
# A submission without kvraft/ (Raft only) gets the kit's stand-in, whose
# stage 4 tests fail saying so.
KV_ABSENT  := grader/kvraft/absent/absent.c
IMPL_SRC   := $(wildcard $(IMPL_DIR)/raft/*.c) \
              $(or $(wildcard $(IMPL_DIR)/kvraft/*.c),$(KV_ABSENT))
IMPL_OBJ   := $(IMPL_SRC:%.c=$(BUILD)/impl/%.o)
RAFT_TEST  := $(BUILD)/$(IMPL_TAG)/raft_test

DEPS_STAMP := $(BUILD)/.deps-ok

.PHONY: all grade test bench deps clean raft_test labrpc_test handout harness_info
all: $(LABRPC_TEST) raft_test $(GRADE) $(LINCHECK)

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

# build/grade builds a submission (grader/build.h) against these: the kit's
# harness, the flags for student code, the public headers; "key value" a line.
PUBLIC_HEADERS := grader/raft/raft.h grader/kvraft/rsm.h grader/kvraft/kvraft.h labrpc/labrpc.h labrpc/codec.h labrpc/persister.h
HARNESS_PARTS  = $(GRADER_OBJ) $(LABRPC_LIB) $(HARNESS_EXTRA)
STUDENT_CFLAGS = $(ALL_CFLAGS) -D_GNU_SOURCE -U_FORTIFY_SOURCE -fno-common $(filter -DRAFTLAB_SIM,$(CPPFLAGS))
SAN_PREFIXES   := $(if $(SAN),__asan_ __lsan_ __tsan_ __ubsan_ __sanitizer_ __odr_asan)
KV_ABSENT_OBJ  := $(BUILD)/impl/$(KV_ABSENT:.c=.o)
harness_info: $(HARNESS_PARTS) $(KV_ABSENT_OBJ)
	@printf 'cc %s\n' $(CC)
	@printf 'cflag %s\n' $(STUDENT_CFLAGS)
	@printf 'link %s\n' $(abspath $(HARNESS_PARTS))
	@printf 'ldflag %s\n' $(ALL_CFLAGS) $(LDFLAGS) $(CUNIT_LIBS) $(LDLIBS) $(HARNESS_LDLIBS)
	@printf 'header %s\n' $(abspath $(PUBLIC_HEADERS))
	@printf 'prefix %s\n' $(SAN_PREFIXES)
	@printf 'absent %s\n' $(abspath $(KV_ABSENT_OBJ))

# The grader program is built without sanitizers, always in $(TOP).
$(GRADE_SRC:%.c=$(TOP)/%.o): $(TOP)/grader/%.o: grader/%.c | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(WARN) -O2 -c $< -o $@
$(GRADE): $(GRADE_OBJ)
	$(CC) $(WARN) -o $@ $^

labrpc_test: $(LABRPC_TEST)

VALGRIND ?=
REPEAT  ?=
JOBS    ?=
POINTS  ?=
JSON    ?=
JUNIT   ?=
GRADESCOPE ?=
TIMEOUT ?=
# Your own code (labs/) and the reference are graded without the sandbox;
# any other IMPL in secure mode (SECURE=1 or 0 says otherwise).
SECURE  ?= $(if $(filter labs solution,$(IMPL_DIR)),0,1)
grade: $(GRADE)
	@$(GRADE) --impl $(IMPL_DIR) $(if $(filter 1,$(SECURE)),--secure,--no-secure) \
	  $(if $(filter 1,$(SIM)),--sim) --lab "$(LAB)" --run "$(RUN)" \
	  $(if $(filter labs,$(IMPL_DIR)),$(if $(LAB)$(RUN)$(REPEAT)$(filter 1,$(ALL)),,--stop-after-failing-stage)) \
	  --valgrind "$(VALGRIND)" --san "$(SAN)" $(if $(REPEAT),--repeat $(REPEAT)) $(if $(JOBS),--jobs $(JOBS)) \
	  --points "$(POINTS)" --json "$(JSON)" --junit "$(JUNIT)" --gradescope "$(GRADESCOPE)" \
	  $(if $(TIMEOUT),--timeout $(TIMEOUT)) $(if $(RAFT_VERBOSE),--keep-logs) \
	  $(if $(filter 1,$(TRACE)),--trace) $(if $(filter 1,$(DRY)),--dry-run)

# The kit's own suite: labrpc's tests, then the Raft tests against the
# solution and the skeleton (both built with -Werror).
test: $(LABRPC_TEST) $(GRADE) $(LINCHECK) $(LINCHECK_TEST)
	@tools/deps.sh --test
	@$(MAKE) --no-print-directory raft_test IMPL=solution
	@$(MAKE) --no-print-directory raft_test IMPL=labs
	@BUILD=$(BUILD) tools/test.sh $(TEST_MODE)

# The student tarball: the kit from git (committed files only) without
# solution/ and the kit's tests that need it (the grader's self-test, the
# pictures' checks).
HANDOUT := $(TOP)/raftlab-handout.tar.gz
handout:
	@mkdir -p $(TOP)
	git archive --format=tar.gz --prefix=raftlab/ -o $(HANDOUT) HEAD -- . \
	  ':(exclude)solution' ':(exclude)grader/selftest' ':(exclude)grader/trace/tests' \
	  ':(exclude).ci'
	@echo "wrote $(HANDOUT)"

bench: $(LABRPC_BENCH) $(LINCHECK_BENCH)
	@$(LABRPC_BENCH)
	@$(LINCHECK_BENCH)

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
