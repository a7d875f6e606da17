/* test_ours.c: raftlab's own tests, beyond 6.5840's 28: they aim at the
 * classic bugs that 6.5840's tests let through (the points file lists them
 * apart). Each uses what 6.5840's network never does:
 *  - a healthy network watched for elections that should not happen;
 *  - a hostile network (cfg_set_hostile): requests duplicated, replayed
 *    late across terms and leaders, reordered far more;
 *  - crash points (cfg_arm_crash_point): a server crashes right after it
 *    answers, keeping only what it had persisted by then.
 * The harness's checks at every apply (committed values never change,
 * indexes in order, snapshots never back) and at every observation
 * (election safety) do the judging.
 */
#include <stdio.h>

#include "tests.h"

/* Rounds of a randomised or constructed test. Virtual time is nearly free,
 * so sim mode runs more of them (more chances to meet a rare schedule);
 * real time runs fewer, so that these tests add under a minute to the
 * suite. */
#ifdef RAFTLAB_SIM
#define ROUNDS(sim, real) (sim)
#else
#define ROUNDS(sim, real) (real)
#endif

/* Every server's term and role, which also checks election safety. */
static int observe(cfg *c)
{
    int max = -1;
    for (int i = 0; i < cfg_n(c); i++) {
        int term;
        bool leader;
        if (cfg_alive(c, i) && cfg_get_state(c, i, &term, &leader) && term > max)
            max = term;
    }
    return max;
}

/* Cuts every link between servers (cfg_connect brings a server's back). */
static void cut_all(cfg *c)
{
    for (int i = 0; i < cfg_n(c); i++)
        for (int j = i + 1; j < cfg_n(c); j++)
            cfg_link(c, i, j, false);
}

/* Links up among the k servers of ids. */
static void group(cfg *c, const int *ids, int k)
{
    for (int x = 0; x < k; x++)
        for (int y = x + 1; y < k; y++)
            cfg_link(c, ids[x], ids[y], true);
}

/* Every link cut but a -> v and b -> v, and those held for an election
 * timeout budget, time for a and b to ask (some rounds of asking) and for a
 * leader among them to give up: their requests wait in the network. */
static void ask_held(cfg *c, int a, int b, int v)
{
    cut_all(c);
    cfg_hold(c, a, v, true);
    cfg_hold(c, b, v, true);
    cfg_link_one_way(c, a, v, true);
    cfg_link_one_way(c, b, v, true);
    cfg_sleep_ms(RAFT_ELECTION_TIMEOUT);
}

/* Polls the k servers of ids (every 5 ms, up to 5 s, longer under
 * valgrind) for one that leads a term above min_term: its id (and *term),
 * or -1. */
static int wait_leader(cfg *c, const int *ids, int k, int min_term, int *term)
{
    for (int step = 0; step < 1000 * cfg_time_factor(); step++) {
        for (int x = 0; x < k; x++) {
            bool leader;
            if (cfg_get_state(c, ids[x], term, &leader) && leader && *term > min_term)
                return ids[x];
        }
        if (cfg_failed(c))
            return -1;
        cfg_sleep_ms(5);
    }
    return -1;
}

/* A test of one scenario first (unless NULL), n rounds of another, then one agreement of
 * every server. */
static void rounds(cfg *c, const char *description, void (*first)(cfg *c), int n,
                   void (*round)(cfg *c))
{
    cfg_begin(c, description);
    if (first) {
        first(c);
        CHECK(c);
    }
    for (int k = 0; k < n; k++) {
        round(c);
        CHECK(c);
    }
    cfg_one_int(c, cfg_rand63(c), cfg_n(c), true);
    CHECK(c);
    cfg_end(c);
}

/* ---- 3A: no elections while all is well -------------------------------- */

static void no_term_churn(cfg *c)
{
    cfg_begin(c, "Test (3A): no elections on a healthy network (raftlab)");
    cfg_check_one_leader(c);
    CHECK(c);
    int term = cfg_check_terms(c);
    CHECK(c);
    /* In virtual time no pause can excuse an election; in real time a
     * process-wide pause (valgrind's, or a loaded machine) can. */
#ifdef RAFTLAB_SIM
    int allowed = 0;
#else
    int allowed = cfg_time_factor() > 1 ? 10 : 2;
#endif
    int max = term;
    for (int step = 0; step < 30; step++) {
        cfg_sleep_ms(100);
        int t = observe(c);
        CHECK(c);
        if (t > max)
            max = t;
    }
    if (max - term > allowed)
        FAILF(c, "the term went from %d to %d in 3 s on a healthy network with every server "
              "up (at most %d allowed): a leader must send heartbeats even with nothing to "
              "replicate, and a follower that hears from its leader must not start elections",
              term, max, allowed);
    cfg_end(c);
}

/* ---- 3A: one vote per term (constructed) --------------------------------- */

/* Three peers, every link cut but a -> v and b -> v, and those held: the
 * (pre-)vote requests of a and b wait in the network until both have asked.
 * Then, by rounds:
 *  - together: both arrive at once. Both can then stand in the same term t,
 *    and v may vote for one of them only.
 *  - after a leads: b's arrive first, and its next requests are held again
 *    (with PreVote, b now stands in t and asks v for its vote); a's arrive
 *    and a leads t with v's vote, then b's vote request of t reaches v,
 *    either right after a's first heartbeat, or after v has heard nothing
 *    for an election timeout. Neither a heartbeat of its term nor its own
 *    election timer may make v forget its vote.
 * If v votes twice in t, a and b both lead t, and election safety fails.
 * Then every link comes back. */
static void one_vote_per_term(cfg *c)
{
    int servers = cfg_n(c);
    cfg_begin(c, "Test (3A): two candidates at once, one vote each term (raftlab)");
    /* In real time only the two variants "after a leads": with PreVote
     * they are what a vote reset needs, and each round costs seconds there. */
    for (int round = 0; round < ROUNDS(6, 2); round++) {
        int variant = ROUNDS(round, round + 1) % 3;
        cfg_check_one_leader(c);
        CHECK(c);
        int v = cfg_rand(c) % servers, a = (v + 1) % servers, b = (v + 2) % servers;
        ask_held(c, a, b, v);
        if (variant == 0) {
            cfg_hold(c, a, v, false);
            cfg_hold(c, b, v, false);
            cfg_release(c, a, v);
            cfg_release(c, b, v);
        } else {
            cfg_release(c, b, v);                   /* b's later requests: held */
            cfg_sleep_ms(50);
            cfg_hold(c, a, v, false);
            cfg_release(c, a, v);
            int only[1] = { a }, t;
            wait_leader(c, only, 1, 0, &t);
            CHECK(c);
            if (variant == 1) {
                cfg_sleep_ms(50);                   /* a's heartbeats reach v */
            } else {
                cfg_link(c, a, v, false);
                cfg_sleep_ms(RAFT_ELECTION_TIMEOUT); /* v's timer runs out */
            }
            cfg_hold(c, b, v, false);
            cfg_release(c, b, v);
        }
        for (int step = 0; step < 40 * cfg_time_factor(); step++) {
            observe(c);                         /* two leaders of a term fail here */
            CHECK(c);
            cfg_sleep_ms(10);
        }
        for (int i = 0; i < servers; i++)
            cfg_connect(c, i);
    }
    cfg_check_one_leader(c);
    CHECK(c);
    cfg_end(c);
}

/* ---- 3A: old heartbeats do not hold off an election (constructed) ------- */

/* Five peers. The leader l's heartbeats to the other four are held (the
 * first one each), then l is cut off; the four elect x in a later term, and
 * x is cut off too. The three left must elect a leader while the network
 * keeps delivering l's old heartbeat to each of them, every 50 ms for 6 s.
 * Those are of an older term: a follower answers no, and must not take
 * them as news from a leader. One that resets its election timer on them
 * never stands, and the three stay without a leader. */
static void stale_heartbeats(cfg *c)
{
    int servers = cfg_n(c);
    cfg_begin(c, "Test (3A): old heartbeats arriving again do not hold off an election (raftlab)");
    for (int round = 0; round < ROUNDS(3, 1); round++) {
        int l = cfg_check_one_leader(c);
        CHECK(c);
        int t;
        bool is_leader;
        cfg_get_state(c, l, &t, &is_leader);
        int rest[4], k = 0;
        for (int i = 0; i < servers; i++)
            if (i != l)
                rest[k++] = i;
        for (int x = 0; x < 4; x++)
            cfg_hold(c, l, rest[x], true);
        for (int step = 0; step < 2 * RAFT_ELECTION_TIMEOUT * cfg_time_factor(); step++) {
            int have = 0;
            for (int x = 0; x < 4; x++)
                have += cfg_held(c, l, rest[x]) > 0;
            if (have == 4)
                break;
            cfg_sleep_ms(1);
        }
        for (int x = 0; x < 4; x++)
            cfg_hold(c, l, rest[x], false);
        cfg_disconnect(c, l);
        int tx, ty;
        int x = wait_leader(c, rest, 4, t, &tx);
        CHECK(c);
        if (x < 0)
            FAILF(c, "four connected servers of five elected no leader in 5 s");
        cfg_sleep_ms(200);                          /* every one hears x's term */
        cfg_disconnect(c, x);
        int left[3];
        k = 0;
        for (int y = 0; y < 4; y++)
            if (rest[y] != x)
                left[k++] = rest[y];
        for (int y = 0; y < 3; y++)
            cfg_echo(c, l, left[y], 120, 50);
        if (wait_leader(c, left, 3, tx, &ty) < 0) {
            CHECK(c);
            FAILF(c, "servers %d, %d and %d elected no leader in 5 s while old heartbeats "
                  "(term %d, from server %d, cut off) kept arriving: a heartbeat of an older "
                  "term is no news from a leader, and must not reset the election timer",
                  left[0], left[1], left[2], t, l);
        }
        cfg_connect(c, x);
        cfg_connect(c, l);
    }
    cfg_check_one_leader(c);
    CHECK(c);
    cfg_end(c);
}

/* ---- 3B: duplicated and stale requests ---------------------------------- */

static void stale_replays(cfg *c)
{
    int servers = cfg_n(c);
    cfg_set_hostile(c, true);
    cfg_begin(c, "Test (3B): agreement despite duplicated and stale requests (raftlab)");
    cfg_one_int(c, cfg_rand63(c), servers, true);
    CHECK(c);
    int down[2] = { -1, -1 };
    for (int iter = 0; iter < ROUNDS(12, 3); iter++) {
        int up = servers - (down[0] >= 0) - (down[1] >= 0);
        for (int k = 0; k < 3; k++) {
            cfg_one_int(c, cfg_rand63(c), up, true);
            CHECK(c);
        }
        int leader = cfg_check_one_leader(c);
        CHECK(c);
        /* The deposed leader takes entries that can never commit: its
         * AppendEntries, replayed late, carry a conflicting log. */
        for (int k = 0; k < 3; k++)
            cfg_start_int(c, leader, cfg_rand63(c), NULL, NULL);
        CHECK(c);
        int slot = iter % 2;
        if (down[slot] >= 0)
            cfg_connect(c, down[slot]);
        cfg_disconnect(c, leader);
        down[slot] = leader;
        observe(c);
        CHECK(c);
    }
    for (int i = 0; i < servers; i++)
        cfg_connect(c, i);
    cfg_one_int(c, cfg_rand63(c), servers, true);
    CHECK(c);
    cfg_end(c);
}

/* ---- 3B: a late AppendEntries from an old leader (constructed) ----------- */

/* Three peers. The leader a is cut off from b, takes entries that cannot
 * commit, and its AppendEntries carrying them to c are held in the network;
 * then a is cut off from c too. b and c commit other entries at the same
 * indexes, in a new term. Only then do a's old AppendEntries reach c. A
 * correct c rejects them (their term is old). If c took them, its log now
 * holds a's entries where others were committed; a and c alone then choose
 * a leader and commit, and the history check sees a committed entry change. */
static void stale_append(cfg *c)
{
    int servers = cfg_n(c);
    cfg_begin(c, "Test (3B): a deposed leader's late AppendEntries (raftlab)");
    cfg_one_int(c, cfg_rand63(c), servers, true);
    CHECK(c);
    for (int round = 0; round < ROUNDS(3, 2); round++) {
        int a = cfg_check_one_leader(c);
        CHECK(c);
        int b = (a + 1) % servers, other = (a + 2) % servers;
        cfg_hold(c, a, other, true);
        cfg_link(c, a, b, false);
        for (int k = 0; k < 3; k++)
            cfg_start_int(c, a, cfg_rand63(c), NULL, NULL);
        CHECK(c);
        cfg_sleep_ms(300);          /* a's AppendEntries to other: held */
        cfg_link(c, a, other, false);
        cfg_hold(c, a, other, false);
        for (int k = 0; k < 3; k++) {
            cfg_one_int(c, cfg_rand63(c), servers - 1, true);
            CHECK(c);
        }
        cfg_release(c, a, other);   /* the stale ones arrive now, and only they */
        cfg_sleep_ms(200);
        observe(c);
        CHECK(c);
        cfg_disconnect(c, b);
        cfg_connect(c, a);          /* a and other alone */
        cfg_one_int(c, cfg_rand63(c), servers - 1, true);
        CHECK(c);
        cfg_connect(c, b);
        cfg_one_int(c, cfg_rand63(c), servers, true);
        CHECK(c);
    }
    cfg_end(c);
}

/* ---- 3B: replies from an earlier election or reign (constructed) --------- */

/* Polls server i (every ms, for up to an election timeout budget) until its
 * term reaches term: whether it did. */
static bool wait_term(cfg *c, int i, int term)
{
    for (int step = 0; step < RAFT_ELECTION_TIMEOUT * cfg_time_factor(); step++) {
        int t;
        bool leader;
        if (cfg_get_state(c, i, &t, &leader) && t >= term)
            return true;
        if (cfg_failed(c))
            return false;
        cfg_sleep_ms(1);
    }
    return false;
}

/* Whether server i is in term now (not beyond it). */
static bool in_term(cfg *c, int i, int term)
{
    int t;
    return cfg_get_state(c, i, &t, NULL) && t == term;
}

/* wait_term, and server i is then in term itself, not beyond it. */
static bool at_term(cfg *c, int i, int term)
{
    return wait_term(c, i, term) && in_term(c, i, term);
}

/* Observes (every ms, for up to 1 s, longer under valgrind) until the armed
 * crash point fires: false if the test failed meanwhile. */
static bool wait_crash_point(cfg *c)
{
    for (int step = 0; step < 1000 * cfg_time_factor() && !cfg_crash_point_fired(c); step++) {
        observe(c);
        if (cfg_failed(c))
            return false;
        cfg_sleep_ms(1);
    }
    return true;
}

/* Polls until server i has at least one request held towards each of j and
 * k (an election timeout budget, as for a candidate's first requests). */
static void wait_held(cfg *c, int i, int j, int k)
{
    for (int step = 0; step < 2 * RAFT_ELECTION_TIMEOUT * cfg_time_factor(); step++) {
        if ((cfg_held(c, i, j) > 0 && cfg_held(c, i, k) > 0) || cfg_failed(c))
            return;
        cfg_sleep_ms(1);
    }
}

/* After one agreement of every server (equal logs: any vote request gets
 * its votes), a server that is not the leader: the candidate of the stale
 * vote scenarios. */
static int pick_candidate(cfg *c)
{
    int servers = cfg_n(c);
    cfg_one_int(c, cfg_rand63(c), servers, true);
    if (cfg_failed(c))
        return -1;
    int leader = cfg_check_one_leader(c);
    if (cfg_failed(c))
        return -1;
    return (leader + 1 + cfg_rand(c) % (servers - 1)) % servers;
}

/* Five peers. a is cut off, but its first requests to v1 and v2 (on a Raft
 * without PreVote, its vote requests of its new term t) are held, and later
 * ones fail. When a stands again, in term t+1, the held requests arrive: v1
 * and v2 vote for a in term t. Counted in term t+1, those votes make a lead
 * t+1 with no vote of t+1; v1 and v2, which never voted in t+1, may then
 * elect another leader of t+1 with the other two, and election safety
 * fails. With PreVote a cannot stand while cut off, and the round proves
 * nothing (earlier_reign is the one for such a Raft). */
static void stale_votes(cfg *c)
{
    int servers = cfg_n(c);
    int a = pick_candidate(c);
    CHECK(c);
    int v1 = (a + 1) % servers, v2 = (a + 2) % servers;
    cfg_hold(c, a, v1, true);
    cfg_hold(c, a, v2, true);
    cfg_disconnect(c, a);
    wait_held(c, a, v1, v2);
    cfg_hold(c, a, v1, false);                      /* a's ends are off: later requests fail */
    cfg_hold(c, a, v2, false);
    int t;
    bool is_leader;
    cfg_get_state(c, a, &t, &is_leader);
    wait_term(c, a, t + 1);
    CHECK(c);
    cfg_release(c, a, v1);
    cfg_release(c, a, v2);
    for (int step = 0; step < 150; step++) {
        observe(c);                                 /* two leaders of t+1 fail here */
        CHECK(c);
        cfg_sleep_ms(10);
    }
    cfg_connect(c, a);
}

/* stale_votes for a Raft with PreVote. Five peers, every link cut. a's
 * requests to v1 and v2 are held; once they are there (pre-votes), they
 * arrive, v1 and v2 answer yes, and a stands in term t: its vote requests
 * to them are held again, and its links to them cut. Then a's links to w1
 * and w2 come up, held the same way: a stands again, in t+1, through their
 * pre-votes, and its vote requests of t+1 wait. Only now do the vote
 * requests of t reach v1 and v2, which grant them. A correct a ignores
 * those grants (they are for t); counted in t+1 they make a lead t+1 with
 * no vote of t+1 but its own. a is cut off, and the other four, none of
 * which voted in t+1, may elect a leader of t+1: election safety fails.
 * Without PreVote, a simply wins t with v1 and v2, and the round proves
 * nothing; nor does it in real time when a resends its lost vote requests
 * of t and wins t with w1 and w2 once their links are up. */
static void stale_votes_prevote(cfg *c)
{
    int servers = cfg_n(c);
    int a = pick_candidate(c);
    CHECK(c);
    int v1 = (a + 1) % servers, v2 = (a + 2) % servers, w1 = (a + 3) % servers,
        w2 = (a + 4) % servers;
    int t, tx;
    bool is_leader;
    cfg_get_state(c, a, &t, &is_leader);
    cut_all(c);
    cfg_hold(c, a, v1, true);
    cfg_hold(c, a, v2, true);
    cfg_link_one_way(c, a, v1, true);
    cfg_link_one_way(c, a, v2, true);
    cfg_sleep_ms(200);                              /* v1 and v2 hear no leader */
    wait_held(c, a, v1, v2);
    cfg_release(c, a, v1);
    cfg_release(c, a, v2);
    wait_term(c, a, t + 1);                         /* a asks for votes of t+1 */
    cfg_hold(c, a, v1, false);
    cfg_hold(c, a, v2, false);
    cfg_link_one_way(c, a, v1, false);
    cfg_link_one_way(c, a, v2, false);
    cfg_hold(c, a, w1, true);
    cfg_hold(c, a, w2, true);
    cfg_link_one_way(c, a, w1, true);
    cfg_link_one_way(c, a, w2, true);
    wait_held(c, a, w1, w2);
    cfg_get_state(c, a, &tx, &is_leader);
    cfg_release(c, a, w1);
    cfg_release(c, a, w2);
    wait_term(c, a, tx + 1);
    CHECK(c);
    cfg_release(c, a, v1);                          /* the vote requests of a's last term but one */
    cfg_release(c, a, v2);
    for (int step = 0; step < 20; step++) {
        observe(c);
        CHECK(c);
        cfg_sleep_ms(5);
    }
    cfg_disconnect(c, a);
    int rest[4] = { v1, v2, w1, w2 };
    group(c, rest, 4);
    int tl;
    wait_leader(c, rest, 4, tx, &tl);               /* a second leader of a's term fails here */
    CHECK(c);
    cfg_hold(c, a, w1, false);
    cfg_hold(c, a, w2, false);
    cfg_release(c, a, w1);
    cfg_release(c, a, w2);
    cfg_connect(c, a);
}

/* Five peers, a leader l of term t and a follower f. l takes five entries
 * that f alone holds, or will hold: either f acknowledges them at once
 * (held false), or l's AppendEntries to f are held while both are cut off
 * (held true; f stays in term t on a Raft with PreVote). The other three
 * elect m, which commits an entry of its own where l's first one is; l
 * rejoins them (and, if it was not held, f too) and takes m's log. Then l
 * wins a later term through p and q alone (they cannot reach each other, nor l),
 * and, cut from q, takes entries at the indexes of its old ones; p
 * acknowledges them. Held, the requests now reach f, which accepts them
 * (they are of its term). Either way f has said it matches l's log up to
 * those indexes, but only as that log was in term t. A leader that keeps
 * its match index from an earlier reign, or counts a reply from one,
 * commits its new entries with p and f, though only l and p hold them; m,
 * q and f then commit other entries there, and the history check sees a
 * committed entry replaced. */
static void earlier_reign(cfg *c, bool held)
{
    int servers = cfg_n(c);
    cfg_one_int(c, cfg_rand63(c), servers, true);   /* f holds everything before l's entries */
    CHECK(c);
    int l = cfg_check_one_leader(c);
    CHECK(c);
    int t;
    bool is_leader;
    cfg_get_state(c, l, &t, &is_leader);
    int f = (l + 1) % servers;
    int g[3] = { (l + 2) % servers, (l + 3) % servers, (l + 4) % servers };
    if (held) {
        cfg_hold(c, l, f, true);
        cfg_disconnect(c, l);
        cfg_disconnect(c, f);
    } else {
        for (int x = 0; x < 3; x++)
            cfg_link(c, l, g[x], false);
    }
    for (int k = 0; k < 5; k++)
        cfg_start_int(c, l, cfg_rand63(c), NULL, NULL);
    CHECK(c);
    cfg_sleep_ms(300);                              /* f has them, or they are held */
    if (held) {
        cfg_hold(c, l, f, false);
    } else {
        cfg_disconnect(c, l);
        cfg_disconnect(c, f);
    }
    int tm;
    int m = wait_leader(c, g, 3, t, &tm);
    CHECK(c);
    if (m < 0)
        FAILF(c, "three connected servers of five elected no leader in 5 s");
    cfg_one_int(c, cfg_rand63(c), 3, true);         /* m's entry where l's first one is */
    CHECK(c);
    if (!held)
        cfg_connect(c, f);
    cfg_connect(c, l);
    cfg_one_int(c, cfg_rand63(c), held ? 4 : 5, true);  /* l (and f) hold m's log now */
    CHECK(c);
    int p = g[0] == m ? g[1] : g[0], q = g[0] + g[1] + g[2] - m - p;
    cfg_disconnect(c, m);
    if (!held)
        cfg_disconnect(c, f);
    /* p and q can neither win nor, without PreVote, hold l off by asking
     * for its vote: only l's requests go through. */
    cfg_link(c, p, q, false);
    cfg_link_one_way(c, p, l, false);
    cfg_link_one_way(c, q, l, false);
    /* Without PreVote, p and q still stand again and again, each in a new
     * term, and l wins only an election it starts in a higher term than
     * both before either stands again: a plain Raft may legitimately take
     * a long time here. Then the round proves nothing. */
    int only[1] = { l }, t2;
    if (wait_leader(c, only, 1, tm, &t2) < 0) {
        CHECK(c);
        if (held)
            cfg_release(c, l, f);
        for (int i = 0; i < servers; i++)
            cfg_connect(c, i);
        return;
    }
    cfg_link(c, l, q, false);
    for (int k = 0; k < 3; k++)
        cfg_start_int(c, l, cfg_rand63(c), NULL, NULL);
    CHECK(c);
    cfg_sleep_ms(30);                               /* p acknowledges them */
    if (held)
        cfg_release(c, l, f);
    cfg_sleep_ms(100);                              /* f's replies reach l */
    observe(c);
    CHECK(c);
    cfg_disconnect(c, l);
    cfg_disconnect(c, p);
    cfg_connect(c, m);
    cfg_connect(c, f);
    cfg_one_int(c, cfg_rand63(c), 3, true);         /* a replaced committed entry fails here */
    CHECK(c);
    cfg_connect(c, l);
    cfg_connect(c, p);
}

static void stale_replies(cfg *c)
{
    int servers = cfg_n(c);
    cfg_begin(c, "Test (3B): votes and acknowledgements from an earlier term (raftlab)");
    for (int round = 0; round < ROUNDS(3, 1); round++) {
        stale_votes(c);
        CHECK(c);
        stale_votes_prevote(c);
        CHECK(c);
        earlier_reign(c, true);
        CHECK(c);
        earlier_reign(c, false);
        CHECK(c);
    }
    cfg_one_int(c, cfg_rand63(c), servers, true);
    CHECK(c);
    cfg_end(c);
}

/* ---- 3B: the paper's Figure 8, built (constructed) ------------------------ */

/* Figure 8 of the Raft paper, step by step on five servers: (a) s1 leads
 * term t and replicates an entry X to s2 only; (b) s5 leads a later term
 * with s3 and s4 and takes an entry of its own at X's index; (c) s1 or s2
 * leads a still later term with s3 and copies X to s3: a majority holds X,
 * but no entry of the leader's own term is there, so X is not committed;
 * (d) s5 leads again with s3 and s4 (its log is the most up to date) and
 * commits its own entry where X was. A leader that counted replicas of X in
 * (c) applied X as committed: the history check sees it replaced. */
static void figure8_built(cfg *c)
{
    int servers = cfg_n(c);
    cfg_begin(c, "Test (3B): the paper's Figure 8, built (raftlab)");
    for (int round = 0; round < ROUNDS(3, 2); round++) {
        cfg_one_int(c, cfg_rand63(c), servers, true);
        CHECK(c);
        int s1 = cfg_check_one_leader(c);
        CHECK(c);
        int t, t5, tl;
        bool leader;
        cfg_get_state(c, s1, &t, &leader);
        int s2 = (s1 + 1) % servers, o[3] = { (s1 + 2) % servers, (s1 + 3) % servers,
                                              (s1 + 4) % servers };
        /* (a) */
        cut_all(c);
        cfg_link(c, s1, s2, true);
        cfg_start_int(c, s1, cfg_rand63(c), NULL, NULL);
        CHECK(c);
        cfg_sleep_ms(200);
        /* (b) */
        cfg_link(c, s1, s2, false);
        group(c, o, 3);
        int s5 = wait_leader(c, o, 3, t, &t5);
        CHECK(c);
        if (s5 < 0)
            FAILF(c, "three connected servers of five elected no leader in 5 s");
        cut_all(c);
        cfg_start_int(c, s5, cfg_rand63(c), NULL, NULL);
        CHECK(c);
        int s3 = o[0] == s5 ? o[1] : o[0], s4 = o[0] + o[1] + o[2] - s5 - s3;
        /* (c) */
        int mid[3] = { s1, s2, s3 };
        group(c, mid, 3);
        int ids[2] = { s1, s2 };
        int l = wait_leader(c, ids, 2, t5, &tl);
        CHECK(c);
        if (l < 0)
            FAILF(c, "servers %d and %d, with %d, elected neither of them in 5 s", s1, s2, s3);
        cfg_sleep_ms(500);
        /* (d) */
        cut_all(c);
        int last[3] = { s5, s3, s4 };
        group(c, last, 3);
        if (wait_leader(c, last, 3, tl, &t) < 0) {
            CHECK(c);
            FAILF(c, "servers %d, %d and %d elected no leader in 5 s", s5, s3, s4);
        }
        cfg_one_int(c, cfg_rand63(c), 3, true);
        CHECK(c);
        for (int i = 0; i < servers; i++)
            cfg_connect(c, i);
    }
    cfg_one_int(c, cfg_rand63(c), servers, true);
    CHECK(c);
    cfg_end(c);
}

/* ---- 3A and 3B: a candidate the leader cannot see (constructed) ---------- */

/* Five peers, from a healthy cluster with equal logs: the leader l, its
 * followers a and b, a candidate x and d. x and d are cut off from l and a;
 * b is linked to l and a, and x's requests to b (and, if to_l, to l) wait in
 * the network. Then b hears nothing from l for 200 ms: more than a minimum
 * election timeout, less than the time after which l gives up leading
 * (check quorum). A Raft with PreVote now lets x stand: b, which hears from
 * no leader, answers x's held pre-votes yes, and x asks for votes in a new
 * term; its vote requests to b (and l) are held again. b and l talk again,
 * and l leads on. Without PreVote the held requests are x's vote requests,
 * and x may win at once. The roles go to ids: l, a, b, x, d. */
static void stand_unseen(cfg *c, bool to_l, int ids[5])
{
    int servers = cfg_n(c);
    cfg_one_int(c, cfg_rand63(c), servers, true);   /* equal logs everywhere */
    if (cfg_failed(c))
        return;
    int l = cfg_check_one_leader(c);
    if (cfg_failed(c))
        return;
    int t;
    bool is_leader;
    cfg_get_state(c, l, &t, &is_leader);
    int b = (l + 1) % servers, x = (l + 2) % servers, d = (l + 3) % servers,
        a = (l + 4) % servers;
    int lab[3] = { l, a, b };
    cut_all(c);
    group(c, lab, 3);
    cfg_link(c, x, d, true);
    cfg_hold(c, x, b, true);
    cfg_link_one_way(c, x, b, true);
    if (to_l) {
        cfg_hold(c, x, l, true);
        cfg_link_one_way(c, x, l, true);
    }
    /* x (or d) stands, or asks to, and its request to b waits. */
    for (int step = 0; step < 3 * RAFT_ELECTION_TIMEOUT * cfg_time_factor(); step++) {
        if (cfg_held(c, x, b) > 0 || cfg_failed(c))
            break;
        cfg_sleep_ms(1);
    }
    cfg_link(c, l, b, false);
    cfg_sleep_ms(200);
    cfg_release(c, x, b);                           /* still holding what comes next */
    int tx;
    for (int step = 0; step < 50; step++) {
        if (!cfg_get_state(c, x, &tx, &is_leader) || tx > t)
            break;
        cfg_sleep_ms(1);
    }
    cfg_link(c, l, b, true);
    ids[0] = l, ids[1] = a, ids[2] = b, ids[3] = x, ids[4] = d;
}

/* stand_unseen, then: l commits an entry e with a and b, which x and d lack.
 * l and a are cut off, x's vote request reaches b at last, and b, x and d
 * are linked. A correct b refuses its vote (b's log holds e, x's does not)
 * and leads itself; a b that votes without comparing logs makes x leader,
 * whose log lacks a committed entry: x's next entry replaces e, and the
 * history check sees it. */
static void late_vote_round(cfg *c)
{
    int ids[5];
    stand_unseen(c, false, ids);
    CHECK(c);
    int l = ids[0], a = ids[1], b = ids[2], x = ids[3], d = ids[4];
    /* l may decline commands until a majority answers again (check quorum). */
    int index = -1, term;
    bool started = false;
    for (int step = 0; step < 100 && !started && !cfg_failed(c); step++) {
        started = cfg_start_int(c, l, cfg_rand63(c), &index, &term);
        if (!started)
            cfg_sleep_ms(5);
    }
    for (int step = 0; started && step < 200 && cfg_n_committed(c, index, NULL) < 3; step++) {
        CHECK(c);
        cfg_sleep_ms(10);
    }
    CHECK(c);
    cfg_disconnect(c, l);
    cfg_disconnect(c, a);
    cfg_hold(c, x, b, false);
    cfg_release(c, x, b);                           /* x's vote request reaches b */
    int bxd[3] = { b, x, d };
    group(c, bxd, 3);
    cfg_one_int(c, cfg_rand63(c), 3, true);         /* a replaced committed entry fails here */
    CHECK(c);
    cfg_connect(c, l);
    cfg_connect(c, a);
}

/* stand_unseen, then: l hears from a majority again, and x's vote request
 * of the new term reaches l (x's later requests to l are held), then b. A
 * leader that takes the newer term must become a follower (§5.1). One that
 * keeps leading now leads x's term, with a and b answering it, and may vote
 * for x too: x then leads that term with d and l. Election safety fails. */
static void step_down_round(cfg *c)
{
    int ids[5];
    stand_unseen(c, true, ids);
    CHECK(c);
    int l = ids[0], b = ids[2], x = ids[3];
    cfg_sleep_ms(50);                               /* b's answers reach l */
    cfg_release(c, x, l);                           /* x's later requests to l: held */
    cfg_sleep_ms(50);
    cfg_hold(c, x, b, false);
    cfg_release(c, x, b);
    for (int step = 0; step < 50; step++) {
        observe(c);                                 /* two leaders of x's term fail here */
        CHECK(c);
        cfg_sleep_ms(10);
    }
    cfg_hold(c, x, l, false);
    cfg_release(c, x, l);
    for (int i = 0; i < cfg_n(c); i++)
        cfg_connect(c, i);
}

/* A leader l cut off; the others elect a new one in a newer term. Then only
 * l's own requests get through: its followers answer them with the newer
 * term, which alone must make l a follower (Figure 2: a term in a response
 * too). A leader that looks only at requests' terms leads its old term for
 * as long as nobody asks it for a vote. */
static void deposed_by_answers(cfg *c)
{
    int n = cfg_n(c);
    int l = cfg_check_one_leader(c);
    CHECK(c);
    cfg_disconnect(c, l);
    int l2 = cfg_check_one_leader(c);
    CHECK(c);
    int t2;
    cfg_get_state(c, l2, &t2, NULL);
    for (int i = 0; i < n; i++)
        if (i != l)
            cfg_link_one_way(c, l, i, true);
    int t = -1;
    bool leads, stale = true;   /* l leads a term older than t2 */
    /* 10 s: a call made while l was cut off may take 7 s to fail, and a
     * leader with one request in flight per follower waits for it. (Its
     * vote requests get through too: l may rightly win a newer term.) */
    for (int step = 0; step < 1000 * cfg_time_factor() && stale; step++) {
        cfg_sleep_ms(10);
        cfg_get_state(c, l, &t, &leads);
        CHECK(c);
        stale = leads && t < t2;
    }
    if (stale)
        cfg_fail(c, "server %d still leads term %d 10 s after its requests could be answered with "
                 "term %d: a newer term in a reply must make a leader a follower (Figure 2: "
                 "\"If RPC request or response contains term T > currentTerm\")", l, t, t2);
    cfg_connect(c, l);
}

static void step_down(cfg *c)
{
    rounds(c, "Test (3A): a leader steps down when it hears of a newer term (raftlab)",
           deposed_by_answers, ROUNDS(4, 2), step_down_round);
}

static void late_vote(cfg *c)
{
    rounds(c, "Test (3B): a vote request that arrives after the voter's log moved on (raftlab)",
           NULL, ROUNDS(4, 2), late_vote_round);
}

/* ---- 3C: a vote survives a crash (constructed) --------------------------- */

/* Three peers in term t. The leader b crashes (it keeps term t). The other
 * two elect a leader a in term t+1 with the vote of v, and v crashes the moment a leads,
 * then a. v (or, every other round, a) and b restart: b's first election is
 * in term t+1 too, and v must remember that it voted for a there (a, that
 * it voted for itself). If it votes again, b leads term t+1, which a led:
 * election safety fails. A round whose election took more than
 * one term proves nothing and is simply repeated. */
static void vote_after_crash_held(cfg *c);
static void vote_in_known_term(cfg *c);

static void vote_after_crash(cfg *c)
{
    int servers = cfg_n(c);
    cfg_begin(c, "Test (3C): a vote survives a crash (raftlab)");
    cfg_one_int(c, cfg_rand63(c), servers, true);
    CHECK(c);
    int done = 0;
    for (int round = 0; round < 16 && done < ROUNDS(8, 2); round++) {
        /* b is the leader: x and y elect the next one at once, in one term
         * if no vote splits (with or without PreVote). */
        int b = cfg_check_one_leader(c);
        CHECK(c);
        int t0 = cfg_check_terms(c);
        CHECK(c);
        int x = (b + 1) % servers, y = (b + 2) % servers;
        cfg_crash1(c, b);
        int a = -1, term = -1;
        for (int step = 0; step < 2000 * cfg_time_factor() && a < 0; step++) {
            for (int i = x; a < 0; i = y) {
                bool leader;
                if (cfg_get_state(c, i, &term, &leader) && leader)
                    a = i;
                if (i == y)
                    break;
            }
            CHECK(c);
            if (a < 0)
                cfg_sleep_ms(2);
        }
        if (a < 0)
            FAILF(c, "no leader among two connected servers after %d s", 4 * cfg_time_factor());
        int v = a == x ? y : x;
        cfg_crash1(c, v);           /* the moment a leads: the votes must be on disk */
        cfg_crash1(c, a);
        /* Every other round b meets a, which must remember that it voted
         * for itself in t+1 (a candidate persists its term and vote before
         * it asks), rather than v. */
        int w = round % 2 ? a : v, other = round % 2 ? v : a;
        cfg_start1(c, w);
        CHECK(c);
        cfg_start1(c, b);
        CHECK(c);
        cfg_connect(c, w);
        cfg_connect(c, b);
        done += term == t0 + 1;
        /* b's election: a second leader of term t+1 fails here. */
        cfg_check_one_leader(c);
        CHECK(c);
        cfg_start1(c, other);
        CHECK(c);
        cfg_connect(c, other);
        cfg_one_int(c, cfg_rand63(c), servers, true);
        CHECK(c);
    }
    vote_after_crash_held(c);
    CHECK(c);
    for (int round = 0; round < ROUNDS(4, 1); round++) {
        vote_in_known_term(c);
        CHECK(c);
    }
    cfg_end(c);
}

/* The same with PreVote in mind: there a candidate can stand in a term
 * only if a majority has not reached that term yet, so the second candidate
 * must pass its pre-vote before the voter votes. Three peers, links cut but
 * a -> v and b -> v, both held until a and b have asked. Then, by rounds:
 *  - a's requests arrive, b's pre-votes too, and b's later requests stay
 *    held: v takes a's term and votes in one step;
 *  - both pre-votes arrive and a and b stand in one term t, their vote
 *    requests held; v's own requests reach b, whose answer carries t, and v
 *    takes t; only then does a's vote request arrive: v votes in a term it
 *    already had (a vote must be persisted even when the term is not new).
 * v crashes right after it answers a's vote request (whose grant makes a
 * lead) and restarts; only then does b's vote request of the same term
 * arrive. A v that forgot its vote grants it too. */
static void vote_after_crash_held(cfg *c)
{
    int servers = cfg_n(c);
    /* In real time one round, the "term first" one: the other variant is
     * what the unheld rounds of this test already build. */
    for (int round = 0; round < ROUNDS(6, 1); round++) {
        int variant = ROUNDS(round, 1) % 2;
        cfg_check_one_leader(c);
        CHECK(c);
        int v = cfg_rand(c) % servers, a = (v + 1) % servers, b = (v + 2) % servers;
        ask_held(c, a, b, v);
        if (variant == 0) {
            int held = cfg_held(c, a, v) + cfg_held(c, b, v);
            cfg_hold(c, a, v, false);               /* b's stay held from now */
            cfg_arm_crash_point(c, v, held + 1);
            CHECK(c);
            cfg_release(c, b, v);                   /* b's pre-votes first */
            cfg_release(c, a, v);
        } else {
            int t, tb;
            bool is_leader;
            cfg_get_state(c, b, &t, &is_leader);
            cfg_release(c, a, v);                   /* pre-votes; what follows stays held */
            cfg_release(c, b, v);
            wait_term(c, a, t + 1);
            wait_term(c, b, t + 1);
            cfg_get_state(c, b, &tb, &is_leader);
            cfg_link_one_way(c, v, b, true);
            wait_term(c, v, tb);                    /* v asks b, and takes b's term */
            cfg_link_one_way(c, v, b, false);
            cfg_arm_crash_point(c, v, 1);
            CHECK(c);
            cfg_hold(c, a, v, false);
            cfg_release(c, a, v);                   /* a's vote request */
        }
        if (!wait_crash_point(c))
            CHECK(c);                               /* says where it failed */
        cfg_crash_at_point(c, v);
        cfg_start1(c, v);
        CHECK(c);
        cfg_link(c, v, a, true);
        cfg_link(c, v, b, true);
        cfg_hold(c, b, v, false);
        cfg_release(c, b, v);                       /* b's vote request, now */
        for (int step = 0; step < 100; step++) {
            observe(c);                             /* two leaders of a term fail here */
            CHECK(c);
            cfg_sleep_ms(5);
        }
        for (int i = 0; i < servers; i++)
            cfg_connect(c, i);
        cfg_one_int(c, cfg_rand63(c), servers, true);
        CHECK(c);
    }
}

/* A vote in a term the voter learnt from an answer, on a Raft without
 * PreVote. Three peers with equal logs: the leader v of term t, a and b.
 * a is cut off and stands in t+1; its vote requests to v are held. v's
 * heartbeat reaches a, whose answer carries t+1: v takes t+1 from a reply.
 * Then a's vote request arrives: v votes in a term it already had, and
 * crashes right after it answers (a leads t+1). b heard v's heartbeats
 * until then, so it stands later, in t+1 too; v restarts then, and b's
 * vote request, held till now, arrives. A v that saved its vote only with
 * a new term grants it again, and b leads t+1, which a led. Where a never
 * stands (PreVote), or a term moves on before its step, the round proves
 * nothing. */
static void vote_in_known_term(cfg *c)
{
    int servers = cfg_n(c);
    cfg_one_int(c, cfg_rand63(c), servers, true);   /* equal logs */
    CHECK(c);
    int v = cfg_check_one_leader(c);
    CHECK(c);
    int t;
    cfg_get_state(c, v, &t, NULL);
    int a = (v + 1) % servers, b = (v + 2) % servers;
    cut_all(c);
    cfg_link(c, v, b, true);
    cfg_hold(c, a, v, true);
    cfg_hold(c, b, v, true);
    cfg_link_one_way(c, a, v, true);
    bool ok = at_term(c, a, t + 1);
    if (ok) {
        cfg_link_one_way(c, v, a, true);            /* v's heartbeat, a's answer */
        ok = at_term(c, v, t + 1);
        cfg_link_one_way(c, v, a, false);
        ok = ok && in_term(c, a, t + 1);
    }
    if (ok) {
        cfg_arm_crash_point(c, v, 1);
        CHECK(c);
        cfg_hold(c, a, v, false);
        cfg_release(c, a, v);                       /* a's vote request of t+1 */
        if (!wait_crash_point(c))
            CHECK(c);                               /* says where it failed */
        for (int step = 0; step < 50; step++) {    /* a's lead, if it won */
            bool leader;
            if (cfg_get_state(c, a, NULL, &leader) && leader)
                break;
            CHECK(c);
            cfg_sleep_ms(1);
        }
        cfg_crash_at_point(c, v);
        /* v comes back once b stands, so that v's own timer cannot start
         * a newer election first. */
        ok = at_term(c, b, t + 1);
        cfg_start1(c, v);
        CHECK(c);
        cfg_link(c, v, b, true);
        cfg_hold(c, b, v, false);
        cfg_release(c, b, v);                       /* b's vote request of t+1 */
        for (int step = 0; ok && step < 100; step++) {
            observe(c);                             /* two leaders of t+1 fail here */
            CHECK(c);
            cfg_sleep_ms(5);
        }
    }
    cfg_hold(c, a, v, false);
    cfg_hold(c, b, v, false);
    cfg_release(c, a, v);
    cfg_release(c, b, v);
    for (int i = 0; i < servers; i++)
        cfg_connect(c, i);
    cfg_one_int(c, cfg_rand63(c), servers, true);
}

/* ---- 3C and 3D: crash points --------------------------------------------- */

/* Figure 2: currentTerm is on stable storage before a server answers. So a
 * server that said it was in term `before` (cfg_get_state), then answered
 * a request and crashed at that moment, comes back in `before` or later. v
 * has just been restarted from the crash point, and nothing has reached it. */
static void check_term_kept(cfg *c, int v, int before)
{
    int after;
    if (cfg_get_state(c, v, &after, NULL) && after < before)
        cfg_fail(c, "server %d said it was in term %d, answered a request and crashed right "
                 "then, and came back in term %d: currentTerm must be on stable storage before "
                 "a server answers (Figure 2), also when it learns the term from a heartbeat",
                 v, before, after);
}

/* A follower learns a new term from heartbeats alone (it missed the
 * election, nothing was appended since, and its own requests cannot get
 * out), answers one, and crashes right then: it must come back in that
 * term. */
static void term_from_heartbeat(cfg *c)
{
    int servers = cfg_n(c);
    int leader = cfg_check_one_leader(c);
    CHECK(c);
    int v = (leader + 1 + cfg_rand(c) % (servers - 1)) % servers;
    cfg_disconnect(c, v);
    cfg_disconnect(c, leader);
    int leader2 = cfg_check_one_leader(c);      /* a new term among the rest */
    CHECK(c);
    int t2;
    cfg_get_state(c, leader2, &t2, NULL);
    /* only the new leader's requests reach v: v cannot learn the term
     * from the replies to requests of its own */
    cfg_link_one_way(c, leader2, v, true);
    int t = -1;
    for (int step = 0; step < 200 * cfg_time_factor() && t < t2; step++) {
        cfg_get_state(c, v, &t, NULL);
        CHECK(c);
        cfg_sleep_ms(5);
    }
    if (t >= t2) {
        cfg_arm_crash_point(c, v, 1);
        CHECK(c);
        for (int step = 0; step < 1000 * cfg_time_factor() && !cfg_crash_point_fired(c); step++)
            cfg_sleep_ms(1);
        bool fired = cfg_crash_at_point(c, v);
        cfg_start1(c, v);
        CHECK(c);
        if (fired)
            check_term_kept(c, v, t);
        CHECK(c);
    }
    cfg_connect(c, v);
    cfg_connect(c, leader);
}

/* term_from_heartbeat first (if heartbeat_round), then rounds of: arm a
 * crash point on a random server (right after its next 1-4 answers; every
 * third round after cutting off the leader, so that the answers are
 * votes), keep the cluster busy and watched until it fires, crash the
 * server as it was then, restart it, check its term (check_term_kept). */
static void crash_points(cfg *c, const char *description, bool heartbeat_round)
{
    int servers = cfg_n(c);
    cfg_begin(c, description);
    cfg_one_int(c, cfg_rand63(c), servers, true);
    CHECK(c);
    if (heartbeat_round) {
        term_from_heartbeat(c);
        CHECK(c);
    }
    for (int iter = 0; iter < ROUNDS(24, 4); iter++) {
        int cut = -1;
        if (iter % 3 == 0) {
            cut = cfg_check_one_leader(c);
            CHECK(c);
            cfg_disconnect(c, cut);
        }
        int v;
        do
            v = cfg_rand(c) % servers;
        while (v == cut);
        int before = -1;
        cfg_get_state(c, v, &before, NULL);
        cfg_arm_crash_point(c, v, 1 + cfg_rand(c) % 4);
        CHECK(c);
        for (int step = 0; step < 100 && !cfg_crash_point_fired(c); step++) {
            for (int i = 0; i < servers; i++)
                if (i != cut && cfg_connected(c, i))
                    cfg_start_int(c, i, cfg_rand63(c), NULL, NULL);
            observe(c);
            CHECK(c);
            cfg_sleep_ms(5 + cfg_rand(c) % 20);
        }
        bool fired = cfg_crash_at_point(c, v);
        cfg_sleep_ms(cfg_rand(c) % 200);
        observe(c);
        CHECK(c);
        cfg_start1(c, v);
        CHECK(c);
        if (fired)
            check_term_kept(c, v, before);
        CHECK(c);
        cfg_connect(c, v);
        if (cut >= 0)
            cfg_connect(c, cut);
        if (iter % 4 == 3) {
            cfg_one_int(c, cfg_rand63(c), servers, true);
            CHECK(c);
        }
    }
    cfg_one_int(c, cfg_rand63(c), servers, true);
    CHECK(c);
    cfg_end(c);
}

static void crash_points_3c(cfg *c)
{
    crash_points(c, "Test (3C): crashes right after a server answers (raftlab)", true);
}

static void crash_points_3d(cfg *c)
{
    /* in real time, 3C's heartbeat round is enough: ours must fit a minute */
    crash_points(c, "Test (3D): crashes right after a server answers, with snapshots (raftlab)",
                 ROUNDS(true, false));
}

/* ---- 3D: stale InstallSnapshots ----------------------------------------- */

/* SnapshotInstall3D's rounds on a hostile network: the victim catches up by
 * InstallSnapshot, and copies of those arrive again later, stale. */
static void stale_snapshots(cfg *c)
{
    int servers = cfg_n(c);
    cfg_set_hostile(c, true);
    cfg_set_staggered_snapshots(c, true);
    cfg_begin(c, "Test (3D): snapshots despite duplicated and stale requests (raftlab)");
    cfg_one_int(c, cfg_rand63(c), servers, true);
    CHECK(c);
    int leader1 = cfg_check_one_leader(c);
    CHECK(c);
    for (int iter = 0; iter < ROUNDS(15, 3); iter++) {
        int victim = (leader1 + 1) % servers;
        int sender = leader1;
        if (iter % 3 == 1) {
            sender = (leader1 + 1) % servers;
            victim = leader1;
        }
        cfg_disconnect(c, victim);
        cfg_one_int(c, cfg_rand63(c), servers - 1, true);
        CHECK(c);
        /* More than a snapshot interval, so the victim needs one. */
        int nn = CFG_SNAPSHOT_INTERVAL / 2 + cfg_rand(c) % CFG_SNAPSHOT_INTERVAL;
        for (int i = 0; i < nn; i++)
            cfg_start_int(c, sender, cfg_rand63(c), NULL, NULL);
        cfg_one_int(c, cfg_rand63(c), servers - 1, true);
        CHECK(c);
        cfg_connect(c, victim);
        cfg_one_int(c, cfg_rand63(c), servers, true);
        CHECK(c);
        observe(c);
        CHECK(c);
        leader1 = cfg_check_one_leader(c);
        CHECK(c);
    }
    cfg_end(c);
}

/* ---- 3D: an InstallSnapshot older than what the follower applied -------- */

/* Commits entries of every server until the last index is ≡ rem (mod
 * CFG_SNAPSHOT_INTERVAL): the rounds below place their own snapshot
 * between the services' (which are at 9, 19, 29, ...). The last index. */
static int pad_to(cfg *c, int rem)
{
    int idx = cfg_one_int(c, cfg_rand63(c), cfg_n(c), true);
    while (!cfg_failed(c) && idx % CFG_SNAPSHOT_INTERVAL != rem)
        idx = cfg_one_int(c, cfg_rand63(c), cfg_n(c), true);
    return idx;
}

/* Three peers, leader l, followers f and g, every log up to index a (a
 * just past the services' snapshot). One of l's requests to f is held: a
 * heartbeat saying a is committed. Then f's answers to l are lost: f takes
 * four new entries and learns that they are committed, but l learns
 * nothing of it and still thinks f lacks them. l's service snapshots at
 * a+2, so l now sends f that snapshot, again and again, while the held
 * heartbeat arrives again and again too. f has applied a+4: the snapshot
 * describes a committed prefix of its log, and installing it would take
 * its service back (§7). A follower that installs it because it is newer
 * than its own snapshot, or because the old heartbeat took its commit
 * index back, fails the harness's check of every snapshot applied. */
static void late_snapshot_round(cfg *c)
{
    int servers = cfg_n(c);
    int a = pad_to(c, 0);
    int l = cfg_check_one_leader(c);
    CHECK(c);
    int f = (l + 1 + cfg_rand(c) % (servers - 1)) % servers;
    cfg_hold(c, l, f, true);
    for (int step = 0; step < RAFT_ELECTION_TIMEOUT * cfg_time_factor() && cfg_held(c, l, f) == 0;
         step++)
        cfg_sleep_ms(1);
    cfg_hold(c, l, f, false);
    cfg_lose_replies(c, l, f, true);
    /* Without answers from f, l cannot bring f back if an election
     * intervenes (f may miss a heartbeat while one is held): then the
     * round stops here and proves nothing. */
    int t;
    cfg_get_state(c, l, &t, NULL);
    bool ok = true;
    int last = a;
    for (int k = 0; k < 4 && ok; k++) {
        int term;
        ok = cfg_start_int(c, l, cfg_rand63(c), &last, &term) && term == t;
        for (int step = 0; ok && cfg_n_committed(c, last, NULL) < servers &&
                           step < 2000 * cfg_time_factor(); step++) {
            bool leader;
            cfg_sleep_ms(1);
            ok = cfg_get_state(c, l, &term, &leader) && leader && term == t;
        }
        ok = ok && cfg_n_committed(c, last, NULL) == servers;
        CHECK(c);
    }
    int s = ok ? cfg_snapshot_at(c, l, last - 2) : 0;
    if (s > a) {
        cfg_echo(c, l, f, 30, 10);
        for (int step = 0; step < 80; step++) {
            observe(c);
            CHECK(c);
            cfg_sleep_ms(5);
        }
    }
    cfg_lose_replies(c, l, f, false);
    cfg_release(c, l, f);
    cfg_one_int(c, cfg_rand63(c), servers, true);
}

static void late_snapshot(cfg *c)
{
    rounds(c, "Test (3D): an InstallSnapshot older than what a follower applied (raftlab)",
           NULL, ROUNDS(6, 1), late_snapshot_round);
}

/* ---- 3D: a snapshot keeps its last entry's term ------------------------- */

/* Polls (for an election timeout budget) until a leader is seen. If it is
 * x, of a term after t1, x takes a command: Leader Completeness (§5.4)
 * says its log holds index committed, committed in t1, so the command goes
 * after it. */
static void leads_with_committed(cfg *c, int x, int t1, int committed)
{
    for (int step = 0; step < RAFT_ELECTION_TIMEOUT * cfg_time_factor(); step++) {
        int t, idx, term;
        bool leader = false;
        for (int i = 0; i < cfg_n(c) && !leader; i++)
            if (i != x && cfg_connected(c, i) && cfg_get_state(c, i, &t, &leader) && leader)
                return;
        if (cfg_get_state(c, x, &t, &leader) && leader && t > t1) {
            if (cfg_start_int(c, x, cfg_rand63(c), &idx, &term) && term > t1 && idx <= committed)
                cfg_fail(c, "server %d leads term %d and puts a new command at index %d, but "
                         "index %d was committed in term %d: a leader's log holds every entry "
                         "committed before its term (§5.4), so its vote requests must show "
                         "its true last log term (a snapshot's last term is the term of the "
                         "entry at its last index, not the term it was taken in)",
                         x, term, idx, committed, t1);
            return;
        }
        if (cfg_failed(c))
            return;
        cfg_sleep_ms(1);
    }
}

/* Five peers with one log up to index s (between the services' snapshots).
 * x and v are cut off; the leader and the two others commit three more
 * entries, of term t1, and the leader crashes. The other three elect m in
 * a later term t2; x's requests now reach m (and m's never reach x), so x
 * learns of t2 from m's answers, with its log still ending at s, of term
 * t1. x's service snapshots at s. Then m is cut off and x joins the two
 * left, whose logs end at s+3, of term t1: x's log is less up to date
 * (§5.4.1), so one of them must lead. A Raft that records x's current term
 * as the snapshot's last term makes x's log look newer: the two vote for
 * x, which leads without the committed entries and replaces them, and the
 * history check sees it. */
static void snapshot_term_round(cfg *c)
{
    int servers = cfg_n(c);
    int s = pad_to(c, 4);
    int l = cfg_check_one_leader(c);
    CHECK(c);
    int t1;
    cfg_get_state(c, l, &t1, NULL);
    int x = (l + 1) % servers, v = (l + 2) % servers;
    cfg_disconnect(c, x);
    cfg_disconnect(c, v);
    for (int k = 0; k < 3; k++) {
        cfg_one_int(c, cfg_rand63(c), servers - 2, true);
        CHECK(c);
    }
    cfg_crash1(c, l);
    cfg_connect(c, v);
    int rest[3], nr = 0;
    for (int i = 0; i < servers; i++)
        if (i != l && i != x)
            rest[nr++] = i;
    int t2;
    int m = wait_leader(c, rest, nr, t1, &t2);
    CHECK(c);
    if (m >= 0) {
        cfg_link_one_way(c, x, m, true);
        wait_term(c, x, t2);
        cfg_link_one_way(c, x, m, false);
        int tx;
        cfg_get_state(c, x, &tx, NULL);
        cfg_snapshot_at(c, x, s);
        cfg_disconnect(c, m);
        cfg_connect(c, x);
        if (tx > t1)
            leads_with_committed(c, x, t1, s + 3);
        CHECK(c);
        cfg_one_int(c, cfg_rand63(c), servers - 2, true);
        CHECK(c);
    }
    cfg_start1(c, l);
    CHECK(c);
    for (int i = 0; i < servers; i++)
        cfg_connect(c, i);
    cfg_one_int(c, cfg_rand63(c), servers, true);
}

static void snapshot_term(cfg *c)
{
    rounds(c, "Test (3D): a snapshot keeps the term of its last entry (raftlab)",
           NULL, ROUNDS(4, 1), snapshot_term_round);
}

static void TestNoTermChurn3A(void) { run_test(5, false, false, no_term_churn); }
static void TestOneVotePerTerm3A(void) { run_test(3, false, false, one_vote_per_term); }
static void TestStaleHeartbeats3A(void) { run_test(5, false, false, stale_heartbeats); }
static void TestStaleReplays3B(void) { run_test(5, false, false, stale_replays); }
static void TestStaleAppend3B(void) { run_test(3, false, false, stale_append); }
static void TestStaleReplies3B(void) { run_test(5, false, false, stale_replies); }
static void TestFigure8Built3B(void) { run_test(5, false, false, figure8_built); }
static void TestStepDown3A(void) { run_test(5, false, false, step_down); }
static void TestLateVote3B(void) { run_test(5, false, false, late_vote); }
static void TestVoteAfterCrash3C(void) { run_test(3, false, false, vote_after_crash); }
static void TestCrashPoints3C(void) { run_test(5, false, false, crash_points_3c); }
static void TestStaleSnapshots3D(void) { run_test(3, false, true, stale_snapshots); }
static void TestCrashPoints3D(void) { run_test(5, false, true, crash_points_3d); }
static void TestLateSnapshot3D(void) { run_test(3, false, true, late_snapshot); }
static void TestSnapshotTerm3D(void) { run_test(5, false, true, snapshot_term); }

const raft_test_def ours_3a[] = {
    { "TestNoTermChurn3A", TestNoTermChurn3A },
    { "TestOneVotePerTerm3A", TestOneVotePerTerm3A },
    { "TestStaleHeartbeats3A", TestStaleHeartbeats3A },
    { "TestStepDown3A", TestStepDown3A },
    { NULL, NULL },
};
const raft_test_def ours_3b[] = {
    { "TestStaleReplays3B", TestStaleReplays3B },
    { "TestStaleAppend3B", TestStaleAppend3B },
    { "TestStaleReplies3B", TestStaleReplies3B },
    { "TestFigure8Built3B", TestFigure8Built3B },
    { "TestLateVote3B", TestLateVote3B },
    { NULL, NULL },
};
const raft_test_def ours_3c[] = {
    { "TestVoteAfterCrash3C", TestVoteAfterCrash3C },
    { "TestCrashPoints3C", TestCrashPoints3C },
    { NULL, NULL },
};
const raft_test_def ours_3d[] = {
    { "TestStaleSnapshots3D", TestStaleSnapshots3D },
    { "TestCrashPoints3D", TestCrashPoints3D },
    { "TestLateSnapshot3D", TestLateSnapshot3D },
    { "TestSnapshotTerm3D", TestSnapshotTerm3D },
    { NULL, NULL },
};
