/* sim: deterministic simulation of threads, time and randomness.
 *
 * A program built for sim mode (make SIM=1) is linked with sim.o and with
 * -Wl,--wrap=<f> for each call below (sim.mk lists them), so that the calls
 * made by the kit's code and the student's code (not libc's own internal
 * ones) come here:
 *   threads     pthread_create, join, detach, exit, once
 *   mutexes     pthread_mutex_init, destroy, lock, trylock, timedlock, unlock
 *   conditions  pthread_cond_init, destroy, wait, timedwait, clockwait,
 *               signal, broadcast (the clock comes from the condattr)
 *   time        nanosleep, clock_nanosleep, usleep, sleep, sched_yield,
 *               clock_gettime, gettimeofday; time and clock are replaced by
 *               definitions here (so CUnit's calls are virtual too)
 *   randomness  rand, srand, random, srandom, rand_r
 *   process     main (prints the seed, and the replay command on failure),
 *               _exit (the same on a failure exit)
 *
 * Model. Every thread is a real pthread, but only one runs at a time: the
 * one holding the baton. At each synchronisation point (lock, trylock, wait,
 * sleep, create, join, clock_gettime, sched_yield) the running thread gives
 * the baton to a thread drawn by a PRNG from those that can run, possibly
 * itself. Each such step advances the virtual clock by SIM_QUANTUM_NS; when
 * no thread can run, the clock jumps to the earliest timer (a sleep or a
 * timed wait). No thread and no timer: a deadlock, reported with each
 * thread's wait. A thread that burns SIM_BUSY_CPU_S seconds of real CPU
 * without reaching a synchronisation point is reported as a busy loop (by a
 * real thread outside the scheduler).
 *
 * Mutexes and condition variables keep their sim state inside the user's
 * pthread_mutex_t / pthread_cond_t (zero means unlocked / default clock,
 * so static initialisers work); they never block for real. Threads only
 * give up the baton inside these wrappers, so a libc-internal lock (stdio,
 * malloc) is never held across a switch.
 *
 * Seed. RAFTLAB_SEED (decimal or 0x hex, read the same way as the harness
 * reads it) or, if unset, a fresh one that is then put into RAFTLAB_SEED so
 * that the harness and labrpc derive theirs from it. The same seed and the
 * same program give the same schedule, the same virtual times and the same
 * output. RAFTLAB_SIM_REPLAY, if set (sim.mk sets it), is the replay
 * command's prefix, e.g. "make grade SIM=1 IMPL=solution".
 *
 * Thread safety: the wrappers are what threads call; everything here is
 * guarded by one internal real mutex. The functions below are for code that
 * runs in sim mode and may be called from any simulated thread.
 */
#ifndef RAFTLAB_SIM_H
#define RAFTLAB_SIM_H

#include <stdint.h>

/* Virtual time that every synchronisation point costs, in ns. */
#define SIM_QUANTUM_NS 1000
/* Real CPU seconds a thread may run without a synchronisation point
 * (times 10 under valgrind; RAFTLAB_SIM_BUSY_S overrides it). */
#define SIM_BUSY_CPU_S 10

/* The run's seed. */
unsigned sim_seed(void);
/* Virtual CLOCK_MONOTONIC, ns. */
int64_t sim_now_ns(void);
/* Scheduling steps taken so far. */
uint64_t sim_steps(void);

#endif
