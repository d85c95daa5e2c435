/* Topology, --numa plans and pinning of the OpenMP team (threads.h). */
#include "threads.h"

#include <errno.h>
#include <hwloc.h>
#include <omp.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

/* ==== the process affinity mask, as the user set it ==== */

/* Captured when the library is loaded, before any of our pinning narrows the main thread's mask,
 * so a second context still sees every CPU taskset allowed. */
#define MASK_CPUS 8192
static cpu_set_t *initial_mask;
static size_t initial_mask_size;

__attribute__((constructor)) static void capture_initial_mask(void) {
    cpu_set_t *m = CPU_ALLOC(MASK_CPUS);
    const size_t size = CPU_ALLOC_SIZE(MASK_CPUS);
    if (!m)
        return;
    if (sched_getaffinity(0, size, m) != 0) {
        CPU_FREE(m);
        return;
    }
    initial_mask = m;
    initial_mask_size = size;
}

static bool cpu_allowed(int os) {
    if (!initial_mask) /* no mask could be read: trust hwloc's allowed set alone */
        return true;
    return os >= 0 && os < MASK_CPUS && CPU_ISSET_S((size_t)os, initial_mask_size, initial_mask);
}

/* ==== topology ==== */

static bool env_set(const char *name) {
    const char *v = getenv(name);
    return v && *v;
}

static int parse_fake_numa(int *out, struct adakv_err *e) {
    const char *v = getenv("ADAKV_FAKE_NUMA");
    *out = 0;
    if (!v || !*v)
        return 0;
    char *end;
    errno = 0;
    const long n = strtol(v, &end, 10);
    if (errno || end == v || *end != '\0' || n < 1 || n > THREADS_FAKE_NUMA_MAX)
        return err_set(e, "ADAKV_FAKE_NUMA: expected a node count in [1, %d], got '%s'",
                       THREADS_FAKE_NUMA_MAX, v);
    *out = (int)n;
    return 0;
}

static int node_of_pu(hwloc_topology_t topo, int os) {
    const int n = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_NUMANODE);
    for (int i = 0; i < n; i++) {
        hwloc_obj_t nd = hwloc_get_obj_by_type(topo, HWLOC_OBJ_NUMANODE, i);
        if (nd->cpuset && hwloc_bitmap_isset(nd->cpuset, (unsigned)os))
            return (int)nd->os_index;
    }
    return 0; /* no NUMA information: everything is node 0 */
}

/* One usable CPU per core (the first allowed hardware thread); falls back to PUs when hwloc
 * reports no cores. Also finds which of them holds the CPU the caller runs on. */
static int collect_cpus(hwloc_topology_t topo, struct threads_topology *t, struct adakv_err *e) {
    hwloc_obj_type_t type = HWLOC_OBJ_CORE;
    int n_obj = hwloc_get_nbobjs_by_type(topo, type);
    if (n_obj <= 0) {
        type = HWLOC_OBJ_PU;
        n_obj = hwloc_get_nbobjs_by_type(topo, type);
    }
    if (n_obj <= 0)
        return err_set(e, "threads: hwloc reports no cores or processing units");
    t->cpu = calloc((size_t)n_obj, sizeof *t->cpu);
    if (!t->cpu)
        return err_set(e, "threads: out of memory for %d cores", n_obj);
    const int here = sched_getcpu();
    t->start_cpu = 0;
    for (int i = 0; i < n_obj; i++) {
        hwloc_obj_t o = hwloc_get_obj_by_type(topo, type, i);
        if (!o->cpuset)
            continue;
        int first = -1;
        for (int pu = hwloc_bitmap_first(o->cpuset); pu >= 0; pu = hwloc_bitmap_next(o->cpuset, pu))
            if (cpu_allowed(pu)) {
                first = pu;
                break;
            }
        if (first < 0)
            continue;
        if (here >= 0 && hwloc_bitmap_isset(o->cpuset, (unsigned)here))
            t->start_cpu = t->n_cpu;
        const int node = node_of_pu(topo, first);
        t->cpu[t->n_cpu++] = (struct threads_cpu){.os = first, .node = node, .mem_node = node};
    }
    if (t->n_cpu == 0)
        return err_set(e, "threads: no core of the machine is in the process's affinity mask");
    return 0;
}

static int count_nodes(const struct threads_topology *t) {
    int n = 0;
    for (int i = 0; i < t->n_cpu; i++) {
        bool seen = false;
        for (int j = 0; j < i && !seen; j++)
            seen = t->cpu[j].node == t->cpu[i].node;
        n += !seen;
    }
    return n;
}

int threads_topology_detect(struct threads_topology *t, struct adakv_err *e) {
    memset(t, 0, sizeof *t);
    int fake;
    if (parse_fake_numa(&fake, e))
        return -1;
    hwloc_topology_t topo;
    if (hwloc_topology_init(&topo) != 0)
        return err_set(e, "threads: hwloc_topology_init failed");
    if (hwloc_topology_load(topo) != 0) {
        hwloc_topology_destroy(topo);
        return err_set(e, "threads: hwloc could not read the machine's topology");
    }
    const int rc = collect_cpus(topo, t, e);
    hwloc_topology_destroy(topo);
    if (rc) {
        threads_topology_free(t);
        return -1;
    }
    if (fake) {
        if (fake > t->n_cpu) {
            const int n = t->n_cpu;
            threads_topology_free(t);
            return err_set(e, "ADAKV_FAKE_NUMA: %d nodes asked for but only %d usable cores", fake,
                           n);
        }
        for (int i = 0; i < t->n_cpu; i++)
            t->cpu[i].node = (int)((long)i * fake / t->n_cpu);
        t->fake_nodes = fake;
    }
    t->n_node = count_nodes(t);
    t->omp_bound = env_set("OMP_PLACES") || env_set("OMP_PROC_BIND");
    return 0;
}

void threads_topology_free(struct threads_topology *t) {
    free(t->cpu);
    t->cpu = NULL;
    t->n_cpu = 0;
}

/* ==== plans ==== */

/* Node ids of t in ascending order (they may be sparse, e.g. 0 and 2). */
static int sorted_nodes(const struct threads_topology *t, int *ids) {
    int n = 0;
    for (int i = 0; i < t->n_cpu; i++) {
        const int id = t->cpu[i].node;
        int at = 0;
        while (at < n && ids[at] < id)
            at++;
        if (at < n && ids[at] == id)
            continue;
        memmove(ids + at + 1, ids + at, (size_t)(n - at) * sizeof *ids);
        ids[at] = id;
        n++;
    }
    return n;
}

/* Index in t->cpu of the k-th core (wrapping) of node `node`. */
static int kth_core_of_node(const struct threads_topology *t, int node, int k) {
    int count = 0;
    for (int i = 0; i < t->n_cpu; i++)
        count += t->cpu[i].node == node;
    k %= count;
    for (int i = 0; i < t->n_cpu; i++)
        if (t->cpu[i].node == node && k-- == 0)
            return i;
    return 0; /* unreachable: node has count > 0 cores */
}

int threads_plan_make(const struct threads_topology *t, enum adakv_numa numa, int n_threads,
                      struct threads_plan *p, struct adakv_err *e) {
    memset(p, 0, sizeof *p);
    if (n_threads < 1)
        return err_set(e, "threads: %d threads asked for, need at least 1", n_threads);
    if (numa != ADAKV_NUMA_OFF && numa != ADAKV_NUMA_DISTRIBUTE && numa != ADAKV_NUMA_ISOLATE)
        return err_set(e, "threads: unknown numa mode %d", (int)numa);
    if (t->n_cpu < 1)
        return err_set(e, "threads: the topology has no usable core");
    p->cpu = malloc((size_t)n_threads * sizeof *p->cpu);
    p->node = malloc((size_t)n_threads * sizeof *p->node);
    p->mem_node = malloc((size_t)n_threads * sizeof *p->mem_node);
    int *ids = malloc((size_t)t->n_cpu * sizeof *ids);
    if (!p->cpu || !p->node || !p->mem_node || !ids) {
        free(ids);
        threads_plan_free(p);
        return err_set(e, "threads: out of memory planning %d threads", n_threads);
    }
    p->n_threads = n_threads;
    p->numa = numa;
    /* A lone thread gains little from a core of its own, and several single-threaded runs
     * pinned to core 0 would share it while the others idle: numa off leaves it to the OS. */
    p->pin = !t->omp_bound && !(numa == ADAKV_NUMA_OFF && n_threads == 1);
    p->fake = t->fake_nodes > 0;
    p->omp_bound = t->omp_bound;
    const int n_node = sorted_nodes(t, ids);
    const int home = t->cpu[t->start_cpu].node;
    for (int i = 0; i < n_threads; i++) {
        int c;
        switch (numa) {
        case ADAKV_NUMA_DISTRIBUTE:
            c = kth_core_of_node(t, ids[i % n_node], i / n_node);
            break;
        case ADAKV_NUMA_ISOLATE:
            c = kth_core_of_node(t, home, i);
            break;
        default:
            c = i % t->n_cpu;
            break;
        }
        p->cpu[i] = t->cpu[c].os;
        p->node[i] = t->cpu[c].node;
        p->mem_node[i] = t->cpu[c].mem_node;
    }
    free(ids);
    return 0;
}

int threads_default_count(const struct threads_topology *t, enum adakv_numa numa) {
    if (t->n_cpu < 1)
        return 1;
    if (numa != ADAKV_NUMA_ISOLATE)
        return t->n_cpu;
    int n = 0;
    for (int i = 0; i < t->n_cpu; i++)
        n += t->cpu[i].node == t->cpu[t->start_cpu].node;
    return n;
}

void threads_plan_free(struct threads_plan *p) {
    free(p->cpu), free(p->node), free(p->mem_node);
    p->cpu = p->node = p->mem_node = NULL;
    p->n_threads = 0;
}

/* ==== pinning ==== */

static int pin_self(int os) {
    if (os < 0 || os >= MASK_CPUS)
        return EINVAL;
    cpu_set_t *set = CPU_ALLOC(MASK_CPUS);
    if (!set)
        return ENOMEM;
    const size_t size = CPU_ALLOC_SIZE(MASK_CPUS);
    CPU_ZERO_S(size, set);
    CPU_SET_S((size_t)os, size, set);
    const int rc = pthread_setaffinity_np(pthread_self(), size, set);
    CPU_FREE(set);
    return rc;
}

int threads_pin(struct threads_plan *p) {
    int team = 0, failed_rc = 0, failed_cpu = -1;
    const int *plan_cpu = p->cpu;
    const bool pin = p->pin;
    int *seen = malloc((size_t)p->n_threads * sizeof *seen);
    if (!seen) {
        snprintf(p->note, sizeof p->note, "not pinned: out of memory");
        p->pinned = true;
        return 0;
    }
#pragma omp parallel num_threads(p->n_threads)
    {
        const int i = omp_get_thread_num();
#pragma omp single
        team = omp_get_num_threads();
        if (pin) {
            const int rc = pin_self(plan_cpu[i]);
            if (rc) {
#pragma omp critical(threads_pin_failure)
                {
                    failed_rc = rc;
                    failed_cpu = plan_cpu[i];
                }
            }
        }
        seen[i] = sched_getcpu();
    }
    p->note[0] = '\0';
    if (failed_rc)
        snprintf(p->note, sizeof p->note, "pinning to cpu %d failed: %s", failed_cpu,
                 strerror(failed_rc));
    else if (team != p->n_threads)
        snprintf(p->note, sizeof p->note, "OpenMP gave %d of %d threads", team, p->n_threads);
    if (!pin) {
        /* libgomp placed the threads: report where they are, nodes unknown beyond that */
        for (int i = 0; i < p->n_threads; i++) {
            p->cpu[i] = i < team ? seen[i] : -1;
            p->node[i] = p->mem_node[i] = -1;
        }
    }
    free(seen);
    p->pinned = true;
    return team;
}

/* ==== names and descriptions ==== */

int adakv_numa_parse(const char *flag, const char *s, enum adakv_numa *out, struct adakv_err *e) {
    if (!strcmp(s, "off"))
        *out = ADAKV_NUMA_OFF;
    else if (!strcmp(s, "distribute"))
        *out = ADAKV_NUMA_DISTRIBUTE;
    else if (!strcmp(s, "isolate"))
        *out = ADAKV_NUMA_ISOLATE;
    else
        return err_set(e, "%s: expected off, distribute or isolate, got '%s'", flag, s);
    return 0;
}

const char *threads_numa_name(enum adakv_numa numa) {
    switch (numa) {
    case ADAKV_NUMA_OFF:
        return "off";
    case ADAKV_NUMA_DISTRIBUTE:
        return "distribute";
    case ADAKV_NUMA_ISOLATE:
        return "isolate";
    }
    return "unknown";
}

/* Appends "a,b,c" of the values of threads whose node is `node` (all when node < 0). */
static size_t list_cpus(const struct threads_plan *p, int node, char *buf, size_t size) {
    size_t n = 0;
    for (int i = 0; i < p->n_threads && n < size; i++) {
        if (node >= 0 && p->node[i] != node)
            continue;
        const int k = snprintf(buf + n, size - n, "%s%d", n ? "," : "", p->cpu[i]);
        n += k > 0 ? (size_t)k : 0;
    }
    return n < size ? n : size - 1;
}

void threads_plan_describe(const struct threads_plan *p, char *buf, size_t size) {
    if (!size)
        return;
    size_t n = 0;
#define PUT(...)                                                                                   \
    do {                                                                                           \
        if (n < size) {                                                                            \
            const int k_ = snprintf(buf + n, size - n, __VA_ARGS__);                               \
            n += k_ > 0 ? (size_t)k_ : 0;                                                          \
        }                                                                                          \
    } while (0)
    PUT("threads = %d ", p->n_threads);
    if (!p->pin) {
        PUT("%s (on cpus ", p->omp_bound ? "placed by OMP_PLACES/OMP_PROC_BIND" : "not pinned");
        if (n < size)
            n += list_cpus(p, -1, buf + n, size - n);
        PUT(")");
    } else {
        PUT("%s to cores ", p->pinned ? "pinned" : "to be pinned");
        /* group by node in order of first appearance: "0,2 (node 0), 1,3 (node 1)" */
        for (int i = 0; i < p->n_threads; i++) {
            bool first = true;
            for (int j = 0; j < i && first; j++)
                first = p->node[j] != p->node[i];
            if (!first)
                continue;
            if (i)
                PUT(", ");
            if (n < size)
                n += list_cpus(p, p->node[i], buf + n, size - n);
            PUT(" (%snode %d)", p->fake ? "fake " : "", p->node[i]);
        }
    }
    PUT(", numa %s", threads_numa_name(p->numa));
    if (p->note[0])
        PUT("; %s", p->note);
#undef PUT
}
