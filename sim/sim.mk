# sim.mk: sim mode, included from the Makefile (see sim/sim.h).
#   make grade SIM=1 [SEED=n]     grade in deterministic virtual time; every
#                                 test prints its seed, a failure its replay
#   make explore RUN=<test> SEEDS=<n> JOBS=<j> [SEED=<first>]
#                                 run n seeds of one test, list the failing ones
#   make figure16 [TRIALS=n] [RANGES=a-b,...] [JOBS=j] [SEED=n]
#                                 the paper's Figure 16 (sim/figure16/run.sh)
# With SIM=1 everything is built under $(BUILD)/sim with -DRAFTLAB_SIM, and
# raft_test is linked with sim.o and the --wrap flags below.

# The rules here must not become make's default goal (that is `all`).
sim_goal := $(.DEFAULT_GOAL)

SIM   ?=
SEEDS ?= 100
comma := ,

ifeq ($(SIM),1)
SIM_TOP := $(BUILD)
override BUILD := $(SIM_TOP)/sim
CPPFLAGS += -DRAFTLAB_SIM
# Every call that sim.c replaces (time and clock are defined there instead).
SIM_WRAP := main _exit \
  pthread_create pthread_join pthread_detach pthread_exit pthread_once \
  pthread_mutex_init pthread_mutex_destroy pthread_mutex_lock pthread_mutex_trylock \
  pthread_mutex_timedlock pthread_mutex_unlock \
  pthread_cond_init pthread_cond_destroy pthread_cond_wait pthread_cond_timedwait \
  pthread_cond_clockwait pthread_cond_signal pthread_cond_broadcast \
  nanosleep clock_nanosleep usleep sleep sched_yield clock_gettime gettimeofday \
  rand srand random srandom rand_r
SIM_OBJ := $(BUILD)/sim/sim.o
SIM_RAFT_TEST := $(BUILD)/$(IMPL_TAG)/raft_test
# Not PIE: code addresses (in deadlock reports) are the same on every run.
$(SIM_RAFT_TEST): $(SIM_OBJ)
SIM_LDLIBS := -no-pie $(addprefix -Wl$(comma)--wrap=,$(SIM_WRAP))
$(SIM_RAFT_TEST): LDLIBS += $(SIM_LDLIBS)
# What build/grade --sim links a submission with (harness_info).
HARNESS_EXTRA := $(SIM_OBJ)
HARNESS_LDLIBS := $(SIM_LDLIBS)
# The scheduler's own checks (tools/test.sh).
SIM_SELFTEST := $(BUILD)/sim_selftest
$(SIM_SELFTEST): $(BUILD)/sim/tests/selftest.o $(SIM_OBJ)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDLIBS) -no-pie $(addprefix -Wl$(comma)--wrap=,$(SIM_WRAP))
sim_selftest: $(SIM_SELFTEST)
.PHONY: sim_selftest
# Figure 16 of the paper (sim/figure16): the reference solution's Raft,
# the harness's cluster, in virtual time.
FIGURE16 := $(BUILD)/figure16_trials
FIGURE16_OBJ := $(BUILD)/sim/figure16/figure16.o $(BUILD)/grader/raft/cfg.o $(BUILD)/grader/trace/trace.o \
  $(patsubst %.c,$(BUILD)/impl/%.o,$(wildcard solution/raft/*.c)) $(BUILD)/liblabrpc.a $(SIM_OBJ)
$(BUILD)/sim/figure16/figure16.o: CPPFLAGS += -Isolution/raft
$(FIGURE16): $(FIGURE16_OBJ)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDLIBS) -no-pie $(addprefix -Wl$(comma)--wrap=,$(SIM_WRAP))
figure16_bin: $(FIGURE16)
.PHONY: figure16_bin
ifneq ($(SEED),)
export RAFTLAB_SEED := $(SEED)
endif
export RAFTLAB_SIM_REPLAY := make grade SIM=1 IMPL=$(IMPL_DIR)

.PHONY: explore
explore: $(SIM_RAFT_TEST)
	@sim/explore.sh $(SIM_RAFT_TEST) "$(RUN)" "$(SEEDS)" "$(or $(JOBS),1)" "$(SEED)"
else
.PHONY: explore sim_for_test figure16
explore:
	@$(MAKE) --no-print-directory SIM=1 explore
#   make figure16 [TRIALS=n] [RANGES=150-155,12-24] [JOBS=j] [SEED=n]
#                                 the paper's Figure 16: a table, and
#                                 $(BUILD)/figure16/figure16.svg
FIGURE16_PLOT := $(BUILD)/figure16_plot
$(FIGURE16_PLOT): $(BUILD)/sim/figure16/plot.o
	$(CC) $(ALL_CFLAGS) -o $@ $^ -lm
test: $(FIGURE16_PLOT)
figure16: $(FIGURE16_PLOT)
	@test -f solution/raft/raft_tuning.h || { echo "make figure16 runs the reference solution," \
	  "and this copy of the kit has no solution/ (a student handout): ask for the full kit" >&2; exit 2; }
	@$(MAKE) --no-print-directory SIM=1 figure16_bin
	@sim/figure16/run.sh $(BUILD)/sim/figure16_trials $(FIGURE16_PLOT) $(BUILD)/figure16 \
	  "$(TRIALS)" "$(if $(filter command line environment,$(origin JOBS)),$(JOBS),2)" "$(SEED)" "$(RANGES)"
# make test checks sim mode too (tools/test.sh): build what it runs.
test: sim_for_test
sim_for_test:
	@$(MAKE) --no-print-directory SIM=1 IMPL=solution raft_test sim_selftest figure16_bin
endif

.DEFAULT_GOAL := $(sim_goal)
