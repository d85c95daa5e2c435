/* Threads pinned to cores, the LPT head-to-thread map, NUMA placement and the --numa flag.
 * The multi-node logic runs on a one-node machine through ADAKV_FAKE_NUMA and hand-built
 * topologies (including interleaved CPU numbers, as on AMD EPYC). */
#include <criterion/criterion.h>
#include <numa.h>
#include <omp.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "forward.h"
#include "head-map.h"
#include "threads.h"

/* ==== LPT against the brute-force optimum ==== */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void) {
    rng_state ^= rng_state << 13, rng_state ^= rng_state >> 7, rng_state ^= rng_state << 17;
    return rng_state;
}

static int64_t makespan(const int64_t *load, int bins) {
    int64_t m = 0;
    for (int b = 0; b < bins; b++)
        m = load[b] > m ? load[b] : m;
    return m;
}

/* Smallest makespan over all bins^n assignments. */
static int64_t optimum(const int64_t *w, int n, int bins) {
    int64_t best = INT64_MAX;
    long total = 1;
    for (int i = 0; i < n; i++)
        total *= bins;
    for (long code = 0; code < total; code++) {
        int64_t load[8] = {0};
        long c = code;
        for (int i = 0; i < n; i++, c /= bins)
            load[c % bins] += w[i];
        const int64_t m = makespan(load, bins);
        best = m < best ? m : best;
    }
    return best;
}

Test(lpt, within_graham_bound_of_the_optimum_on_random_inputs) {
    int exact = 0, cases = 0;
    for (int trial = 0; trial < 400; trial++) {
        const int n = 1 + (int)(rnd() % 8), bins = 2 + (int)(rnd() % 3);
        int64_t w[8], load[8];
        int owner[8];
        for (int i = 0; i < n; i++)
            w[i] = (int64_t)(rnd() % 1000);
        head_map_lpt(w, n, bins, owner, load);
        int64_t check[8] = {0};
        for (int i = 0; i < n; i++) {
            cr_assert(owner[i] >= 0 && owner[i] < bins);
            check[owner[i]] += w[i];
        }
        for (int b = 0; b < bins; b++)
            cr_assert_eq(check[b], load[b], "reported load of bin %d is not its items' sum", b);
        const int64_t opt = optimum(w, n, bins), got = makespan(load, bins);
        /* Graham: LPT <= (4/3 - 1/(3m)) OPT, i.e. 3m LPT <= (4m - 1) OPT */
        cr_assert(3 * bins * got <= (4 * bins - 1) * opt, "n %d bins %d: LPT %ld vs optimum %ld", n,
                  bins, (long)got, (long)opt);
        exact += got == opt;
        cases++;
    }
    cr_log_info("LPT equals the optimum in %d of %d random cases", exact, cases);
}

Test(lpt, exact_on_easy_cases_and_tight_on_the_classic_worst_case) {
    int64_t load[4];
    int owner[8];
    /* no more items than bins: each alone, makespan = the largest */
    const int64_t few[3] = {5, 9, 2};
    head_map_lpt(few, 3, 3, owner, load);
    cr_assert_eq(makespan(load, 3), 9);
    cr_assert(owner[0] != owner[1] && owner[1] != owner[2] && owner[0] != owner[2]);
    /* equal weights: as even as can be */
    const int64_t eq[7] = {4, 4, 4, 4, 4, 4, 4};
    head_map_lpt(eq, 7, 3, owner, load);
    cr_assert_eq(makespan(load, 3), 12);
    /* 3 heads on 2 threads after Ada-KV: the long head alone */
    const int64_t ada[3] = {100, 900, 700};
    head_map_lpt(ada, 3, 2, owner, load);
    cr_assert_eq(makespan(load, 2), 900);
    cr_assert_eq(owner[0], owner[2]);
    /* the classic 2-bin worst case: LPT 7 against the optimum 6 = (4/3 - 1/6) OPT exactly */
    const int64_t worst[5] = {3, 3, 2, 2, 2};
    head_map_lpt(worst, 5, 2, owner, load);
    cr_assert_eq(makespan(load, 2), 7);
    cr_assert_eq(optimum(worst, 5, 2), 6);
}

/* ==== the head map over a cache ==== */

static void check_map(const struct head_map *m) {
    int seen[64] = {0};
    cr_assert_eq(m->start[0], 0);
    cr_assert_eq(m->start[m->n_threads], m->n_head_kv, "the lists hold %d of %d heads",
                 m->start[m->n_threads], m->n_head_kv);
    for (int t = 0; t < m->n_threads; t++) {
        cr_assert(m->start[t] <= m->start[t + 1]);
        for (int i = m->start[t]; i < m->start[t + 1]; i++) {
            const int g = m->order[i];
            cr_assert(g >= 0 && g < m->n_head_kv);
            cr_assert_eq(m->owner[g], t, "head %d listed under thread %d, owned by %d", g, t,
                         m->owner[g]);
            seen[g]++;
        }
    }
    for (int g = 0; g < m->n_head_kv; g++)
        cr_assert_eq(seen[g], 1, "head %d served %d times", g, seen[g]);
}

Test(head_map, every_segment_once_and_loads_are_summed_lengths) {
    for (int trial = 0; trial < 100; trial++) {
        const int L = 1 + (int)(rnd() % 6), H = 1 + (int)(rnd() % 12), T = 1 + (int)(rnd() % 5);
        struct kv_cache kv;
        struct adakv_err e;
        cr_assert_eq(kv_cache_init(&kv, KV_TYPE_INT8, L, H, 64, &e), 0, "%s", e.msg);
        int64_t sum[12] = {0};
        for (int l = 0; l < L; l++)
            for (int g = 0; g < H; g++) {
                kv_cache_seg(&kv, l, g)->len = (int32_t)(rnd() % 500);
                sum[g] += kv_cache_seg(&kv, l, g)->len;
            }
        struct head_map m;
        cr_assert_eq(head_map_init(&m, H, T, &e), 0, "%s", e.msg);
        check_map(&m); /* the initial (all-zero weight) map is round-robin and complete */
        head_map_build(&m, &kv);
        check_map(&m);
        int64_t load[5] = {0};
        for (int g = 0; g < H; g++)
            load[m.owner[g]] += sum[g];
        for (int t = 0; t < T; t++)
            cr_assert_eq(load[t], m.load[t]);
        for (int l = 0; l < L; l++) /* the test set len without rows; nothing to free per seg */
            for (int g = 0; g < H; g++)
                kv_cache_seg(&kv, l, g)->len = 0;
        head_map_free(&m);
        kv_cache_free(&kv);
    }
}

Test(head_map, bad_sizes_are_one_line_errors) {
    struct head_map m;
    struct adakv_err e;
    cr_assert_eq(head_map_init(&m, 0, 2, &e), -1);
    cr_assert(strstr(e.msg, "head map"), "%s", e.msg);
    cr_assert_eq(head_map_init(&m, 3, 0, &e), -1);
}

/* ==== topology and plans ==== */

static struct threads_topology interleaved(int start) {
    /* 8 cores, 2 nodes, CPU numbers interleaved: node 0 = 0,2,4,6 and node 1 = 1,3,5,7 */
    static struct threads_cpu cpus[8];
    for (int i = 0; i < 8; i++)
        cpus[i] = (struct threads_cpu){.os = i, .node = i % 2, .mem_node = i % 2};
    return (struct threads_topology){.n_cpu = 8, .cpu = cpus, .n_node = 2, .start_cpu = start};
}

Test(plan, distribute_spreads_threads_over_nodes_with_interleaved_cpu_numbers) {
    struct threads_topology t = interleaved(0);
    struct threads_plan p;
    struct adakv_err e;
    cr_assert_eq(threads_plan_make(&t, ADAKV_NUMA_DISTRIBUTE, 6, &p, &e), 0, "%s", e.msg);
    const int want[6] = {0, 1, 2, 3, 4, 5}; /* node 0's 1st, node 1's 1st, node 0's 2nd, ... */
    for (int i = 0; i < 6; i++) {
        cr_assert_eq(p.cpu[i], want[i], "thread %d on cpu %d", i, p.cpu[i]);
        cr_assert_eq(p.node[i], i % 2);
    }
    threads_plan_free(&p);
}

Test(plan, isolate_keeps_every_thread_on_the_starting_node) {
    struct threads_topology t = interleaved(3); /* started on cpu index 3 = os 3, node 1 */
    struct threads_plan p;
    struct adakv_err e;
    cr_assert_eq(threads_default_count(&t, ADAKV_NUMA_ISOLATE), 4);
    cr_assert_eq(threads_plan_make(&t, ADAKV_NUMA_ISOLATE, 4, &p, &e), 0, "%s", e.msg);
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(p.node[i], 1);
        cr_assert_eq(p.cpu[i], 2 * i + 1);
    }
    threads_plan_free(&p);
    cr_assert_eq(threads_plan_make(&t, ADAKV_NUMA_OFF, 3, &p, &e), 0, "%s", e.msg);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(p.cpu[i], i, "off: thread i on core i");
    threads_plan_free(&p);
    cr_assert_eq(threads_plan_make(&t, ADAKV_NUMA_OFF, 1, &p, &e), 0, "%s", e.msg);
    cr_assert(!p.pin, "one thread with numa off is left to the OS");
    threads_plan_free(&p);
    cr_assert_eq(threads_plan_make(&t, ADAKV_NUMA_ISOLATE, 1, &p, &e), 0, "%s", e.msg);
    cr_assert(p.pin && p.node[0] == 1, "isolate pins even one thread to its node");
    threads_plan_free(&p);
    cr_assert_eq(threads_plan_make(&t, ADAKV_NUMA_OFF, 0, &p, &e), -1);
    cr_assert(strstr(e.msg, "threads"), "%s", e.msg);
    cr_assert_eq(threads_plan_make(&t, (enum adakv_numa)7, 2, &p, &e), -1);
}

Test(topology, real_machine_cores_are_in_the_affinity_mask) {
    unsetenv("ADAKV_FAKE_NUMA");
    struct threads_topology t;
    struct adakv_err e;
    cr_assert_eq(threads_topology_detect(&t, &e), 0, "%s", e.msg);
    cpu_set_t mask;
    cr_assert_eq(sched_getaffinity(0, sizeof mask, &mask), 0);
    cr_assert(t.n_cpu >= 1 && t.n_cpu <= CPU_COUNT(&mask));
    for (int i = 0; i < t.n_cpu; i++)
        cr_assert(CPU_ISSET(t.cpu[i].os, &mask), "cpu %d is outside the mask", t.cpu[i].os);
    cr_assert(t.start_cpu >= 0 && t.start_cpu < t.n_cpu);
    cr_assert_eq(t.fake_nodes, 0);
    threads_topology_free(&t);
}

Test(topology, fake_two_nodes_split_the_cores_for_distribute_and_isolate) {
    setenv("ADAKV_FAKE_NUMA", "2", 1);
    struct threads_topology t;
    struct adakv_err e;
    const int rc = threads_topology_detect(&t, &e);
    if (rc) { /* one usable core: two fake nodes cannot exist, and that is the error */
        cr_assert(strstr(e.msg, "ADAKV_FAKE_NUMA"), "%s", e.msg);
        cr_skip_test("one usable core");
    }
    cr_assert_eq(t.n_node, 2);
    cr_assert_eq(t.cpu[0].node, 0);
    cr_assert_eq(t.cpu[t.n_cpu - 1].node, 1);
    struct threads_plan p;
    cr_assert_eq(threads_plan_make(&t, ADAKV_NUMA_DISTRIBUTE, 2, &p, &e), 0, "%s", e.msg);
    cr_assert(p.fake);
    cr_assert_neq(p.node[0], p.node[1], "distribute put both threads on node %d", p.node[0]);
    threads_plan_free(&p);
    const int n_iso = threads_default_count(&t, ADAKV_NUMA_ISOLATE);
    cr_assert_eq(threads_plan_make(&t, ADAKV_NUMA_ISOLATE, n_iso + 1, &p, &e), 0, "%s", e.msg);
    for (int i = 0; i < p.n_threads; i++)
        cr_assert_eq(p.node[i], t.cpu[t.start_cpu].node, "isolate: thread %d left the node", i);
    char line[256];
    threads_plan_describe(&p, line, sizeof line);
    cr_assert(strstr(line, "fake node") && strstr(line, "numa isolate"), "%s", line);
    threads_plan_free(&p);
    threads_topology_free(&t);
}

Test(topology, bad_fake_numa_values_are_one_line_errors) {
    const char *bad[] = {"", "x", "0", "-1", "2x", "65", "100000000000000000000"};
    struct threads_topology t;
    struct adakv_err e;
    for (size_t i = 1; i < sizeof bad / sizeof bad[0]; i++) {
        setenv("ADAKV_FAKE_NUMA", bad[i], 1);
        cr_assert_eq(threads_topology_detect(&t, &e), -1, "ADAKV_FAKE_NUMA=%s accepted", bad[i]);
        cr_assert(strstr(e.msg, "ADAKV_FAKE_NUMA") && !strchr(e.msg, '\n'), "%s", e.msg);
    }
    setenv("ADAKV_FAKE_NUMA", "64", 1);
    cpu_set_t mask;
    sched_getaffinity(0, sizeof mask, &mask);
    if (CPU_COUNT(&mask) < 64) {
        cr_assert_eq(threads_topology_detect(&t, &e), -1);
        cr_assert(strstr(e.msg, "usable cores"), "%s", e.msg);
    }
    setenv("ADAKV_FAKE_NUMA", "", 1); /* empty = not set */
    cr_assert_eq(threads_topology_detect(&t, &e), 0, "%s", e.msg);
    threads_topology_free(&t);
}

Test(topology, omp_places_means_we_do_not_pin) {
    unsetenv("ADAKV_FAKE_NUMA");
    setenv("OMP_PLACES", "cores", 1);
    struct threads_topology t;
    struct threads_plan p;
    struct adakv_err e;
    cr_assert_eq(threads_topology_detect(&t, &e), 0, "%s", e.msg);
    cr_assert(t.omp_bound);
    cr_assert_eq(threads_plan_make(&t, ADAKV_NUMA_OFF, 2, &p, &e), 0, "%s", e.msg);
    cr_assert(!p.pin);
    threads_pin(&p);
    char line[256];
    threads_plan_describe(&p, line, sizeof line);
    cr_assert(strstr(line, "OMP_PLACES"), "%s", line);
    threads_plan_free(&p);
    threads_topology_free(&t);
    unsetenv("OMP_PLACES");
}

/* ==== pinning ==== */

Test(pin, each_thread_runs_only_on_its_planned_cpu_in_later_regions) {
    unsetenv("ADAKV_FAKE_NUMA"), unsetenv("OMP_PLACES"), unsetenv("OMP_PROC_BIND");
    struct threads_topology t;
    struct threads_plan p;
    struct adakv_err e;
    cr_assert_eq(threads_topology_detect(&t, &e), 0, "%s", e.msg);
    const int n = t.n_cpu < 4 ? t.n_cpu : 4;
    cr_assert_eq(threads_plan_make(&t, ADAKV_NUMA_OFF, n, &p, &e), 0, "%s", e.msg);
    cr_assert_eq(threads_pin(&p), n, "%s", p.note);
    cr_assert_eq(p.note[0], '\0', "%s", p.note);
    int wrong = -1, count_bad = 0;
#pragma omp parallel num_threads(n) reduction(+ : count_bad)
    {
        cpu_set_t mask;
        pthread_getaffinity_np(pthread_self(), sizeof mask, &mask);
        const int i = omp_get_thread_num();
        if (CPU_COUNT(&mask) != 1 || !CPU_ISSET(p.cpu[i], &mask)) {
            count_bad++;
            wrong = i;
        }
    }
    cr_assert_eq(count_bad, 0, "thread %d is not bound to cpu %d alone", wrong,
                 wrong >= 0 ? p.cpu[wrong] : -1);
    threads_plan_free(&p);
    threads_topology_free(&t);
}

/* ==== memory placement ==== */

Test(place, every_segment_ends_on_its_owners_node) {
    unsetenv("OMP_PLACES"), unsetenv("OMP_PROC_BIND");
    setenv("ADAKV_FAKE_NUMA", "2", 1);
    struct threads_topology t;
    struct adakv_err e;
    if (threads_topology_detect(&t, &e)) {
        unsetenv("ADAKV_FAKE_NUMA");
        cr_assert_eq(threads_topology_detect(&t, &e), 0, "%s", e.msg);
    }
    struct threads_plan p;
    cr_assert_eq(threads_plan_make(&t, ADAKV_NUMA_DISTRIBUTE, 2, &p, &e), 0, "%s", e.msg);
    struct kv_cache kv;
    const int L = 4, H = 3, d = 64;
    cr_assert_eq(kv_cache_init(&kv, KV_TYPE_INT8, L, H, d, &e), 0, "%s", e.msg);
    float *rows = malloc(sizeof(float) * 3000 * d);
    for (int i = 0; i < 3000 * d; i++)
        rows[i] = (float)((int)(rnd() % 200) - 100) / 50.0f;
    const int len[3] = {3000, 200, 900}; /* Ada-KV-like: very different lengths */
    for (int l = 0; l < L; l++)
        for (int g = 0; g < H; g++)
            cr_assert_eq(kv_cache_append(&kv, l, g, rows, rows, d, len[g], 0,
                                         simd_ops_scalar()->quant_row_i8, &e),
                         0, "%s", e.msg);
    struct head_map m;
    cr_assert_eq(head_map_init(&m, H, 2, &e), 0, "%s", e.msg);
    head_map_build(&m, &kv);
    cr_assert_eq(m.order[m.start[m.owner[0]]], 0, "the longest head leads its thread's list");
    cr_assert_neq(m.owner[0], m.owner[1]);
    cr_assert_eq(m.owner[1], m.owner[2], "LPT: 3000 alone, 900 + 200 together");
    if (p.fake) /* the two owners sit on different fake nodes under distribute */
        cr_assert_neq(p.node[m.owner[0]], p.node[m.owner[1]]);
    if (numa_available() < 0)
        cr_skip_test("no NUMA API in this kernel");
    const long on = head_map_place(&m, &p, &kv, &e);
    cr_assert(on > 0, "no page placed: %s", on < 0 ? e.msg : "0 pages");
    for (int l = 0; l < L; l++)
        for (int g = 0; g < H; g++) {
            const struct kv_segment *s = kv_cache_seg(&kv, l, g);
            const int want = p.mem_node[m.owner[g]];
            const void *probe[] = {s->k, (const char *)s->v + (size_t)(s->cap - 1) * d, s->k_scale,
                                   s->pos + s->cap - 1};
            for (size_t i = 0; i < 4; i++)
                cr_assert_eq(head_map_node_of(probe[i]), want,
                             "layer %d head %d array %zu is on node %d, its thread's is %d", l, g,
                             i, head_map_node_of(probe[i]), want);
        }
    /* the rows themselves are untouched by placement (values: stored as given, keys rotate) */
    int8_t q[64];
    float sc;
    simd_ops_scalar()->quant_row_i8(q, &sc, rows + (size_t)2999 * d, d);
    cr_assert_eq(memcmp(q, (int8_t *)kv_cache_seg(&kv, 1, 0)->v + (size_t)2999 * d, d), 0);
    cr_assert_eq(sc, kv_cache_seg(&kv, 1, 0)->v_scale[2999]);
    free(rows);
    head_map_free(&m);
    kv_cache_free(&kv);
    threads_plan_free(&p);
    threads_topology_free(&t);
}

/* ==== the flag ==== */

Test(flag, numa_values_and_errors) {
    enum adakv_numa n;
    struct adakv_err e;
    cr_assert_eq(adakv_numa_parse("--numa", "off", &n, &e), 0);
    cr_assert_eq(n, ADAKV_NUMA_OFF);
    cr_assert_eq(adakv_numa_parse("--numa", "distribute", &n, &e), 0);
    cr_assert_eq(n, ADAKV_NUMA_DISTRIBUTE);
    cr_assert_eq(adakv_numa_parse("--numa", "isolate", &n, &e), 0);
    cr_assert_eq(n, ADAKV_NUMA_ISOLATE);
    const char *bad[] = {"", "numactl", "Off", "distribute ", "1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_eq(adakv_numa_parse("--numa", bad[i], &n, &e), -1, "'%s' accepted", bad[i]);
        cr_assert(strstr(e.msg, "--numa") && strstr(e.msg, "distribute"), "%s", e.msg);
    }
}

/* ==== decode through the engine: any complete map gives the same logits ==== */

static const char *model_path(void) {
    const char *p = getenv("ADAKV_MODEL");
    return p && *p ? p : NULL;
}

static void decode_logits(struct adakv_model *mod, int force, float *out, int n_decode,
                          char *placement, size_t size) {
    struct adakv_ctx_params cp;
    adakv_ctx_params_default(&cp);
    cp.n_ctx = 512;
    cp.n_threads = 2;
    cp.numa = ADAKV_NUMA_DISTRIBUTE;
    struct adakv_err e;
    struct adakv_ctx *c = adakv_ctx_new(mod, &cp, &e);
    cr_assert(c, "%s", e.msg);
    struct adakv_press *press = adakv_press_new();
    cr_assert_eq(adakv_press_set(press, "press", "ada-snapkv", &e), 0, "%s", e.msg);
    cr_assert_eq(adakv_press_set(press, "kv-budget", "40", &e), 0, "%s", e.msg);
    cr_assert_eq(adakv_ctx_set_press(c, press, false, &e), 0, "%s", e.msg);
    adakv_press_free(press);
    int32_t tok[160];
    uint64_t s = 12345;
    for (int i = 0; i < 160; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        tok[i] = (int32_t)((s >> 33) % 49152);
    }
    const int vocab = 49152;
    float *logits = malloc(sizeof(float) * vocab);
    cr_assert_eq(adakv_eval(c, tok, 120, logits, false, &e), 0, "%s", e.msg);
    check_map(&c->heads);
    if (force == 1) { /* every head on the last thread */
        for (int g = 0; g < c->heads.n_head_kv; g++)
            c->heads.order[g] = g;
        for (int t = 0; t < c->heads.n_threads; t++)
            c->heads.start[t] = 0;
        c->heads.start[c->heads.n_threads] = c->heads.n_head_kv;
    } else if (force == 2) { /* a map for 5 threads while the team has 2 */
        struct head_map big;
        cr_assert_eq(head_map_init(&big, c->heads.n_head_kv, 5, &e), 0, "%s", e.msg);
        for (int g = 0; g < big.n_head_kv; g++) /* heads on threads 2, 3, 4: none on 0 or 1 */
            big.owner[g] = 2 + g % 3;
        for (int t = 0; t <= 5; t++)
            big.start[t] = t <= 2 ? 0 : t - 2 < big.n_head_kv ? t - 2 : big.n_head_kv;
        for (int g = 0; g < big.n_head_kv; g++)
            big.order[g] = g;
        head_map_free(&c->heads);
        c->heads = big;
    }
    for (int i = 0; i < n_decode; i++) {
        cr_assert_eq(adakv_eval(c, tok + 120 + i, 1, logits, false, &e), 0, "%s", e.msg);
        memcpy(out + (size_t)i * vocab, logits, sizeof(float) * vocab);
    }
    snprintf(placement, size, "%s", adakv_ctx_placement(c));
    free(logits);
    adakv_ctx_free(c);
}

Test(engine, decode_logits_do_not_depend_on_which_thread_serves_a_head, .timeout = 300) {
    /* make check always has the default model (tools/fetch-model.sh): absent or unloadable is a
     * failure, never a skip, or a loader regression would pass */
    cr_assert(model_path(), "ADAKV_MODEL is not set (run through make check)");
    setenv("ADAKV_FAKE_NUMA", "2", 1);
    struct adakv_err e;
    struct adakv_model *mod = adakv_model_load(model_path(), NULL, &e);
    cr_assert_not_null(mod, "default model not loadable: %s", e.msg);
    const int n = 3, vocab = 49152;
    float *a = malloc(sizeof(float) * n * vocab), *b = malloc(sizeof(float) * n * vocab);
    char pa[256], pb[256];
    decode_logits(mod, 0, a, n, pa, sizeof pa);
    cr_log_info("placement: %s", pa);
    cr_assert(strstr(pa, "numa distribute"), "%s", pa);
    for (int force = 1; force <= 2; force++) {
        decode_logits(mod, force, b, n, pb, sizeof pb);
        cr_assert_eq(memcmp(a, b, sizeof(float) * n * vocab), 0, "map %d changed the decode logits",
                     force);
    }
    free(a), free(b);
    adakv_model_free(mod);
}
