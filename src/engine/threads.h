/* Where the engine's OpenMP threads run: the machine's cores and NUMA nodes, the core each
 * thread is pinned to for a --numa mode, and the pinning itself (architecture.md section 3).
 *
 * Topology comes from hwloc, restricted to the process's affinity mask as it was when the
 * library first looked (so `taskset` is honoured and our own pinning never shrinks it). CPU
 * numbers are OS numbers and are never assumed contiguous within a node. One CPU per core is
 * used (the first allowed hardware thread), so two threads never share a core's pipelines.
 *
 * ADAKV_FAKE_NUMA=N splits the usable cores into N fake nodes (contiguous blocks in topology
 * order), so the multi-node logic runs and is tested on a one-node machine; memory calls then go
 * to the real node of each CPU.
 *
 * When the user set OMP_PLACES or OMP_PROC_BIND, libgomp binds the threads itself (or was told
 * not to): we do not pin on top, and only record where each thread runs. */
#ifndef ADAKV_THREADS_H
#define ADAKV_THREADS_H

#include <stdbool.h>
#include <stddef.h>

#include "adakv.h"

#define THREADS_FAKE_NUMA_MAX 64

struct threads_cpu {
    int os;       /* OS CPU number (for sched_setaffinity) */
    int node;     /* node the planner sees: the real one, or the fake one under ADAKV_FAKE_NUMA */
    int mem_node; /* real NUMA node of the CPU (for memory placement) */
};

struct threads_topology {
    int n_cpu;               /* usable cores, one CPU each, in topology order */
    struct threads_cpu *cpu; /* [n_cpu] */
    int n_node;              /* distinct nodes among the usable cores */
    int fake_nodes;          /* ADAKV_FAKE_NUMA value, 0 = real topology */
    int start_cpu;           /* index into cpu[] of the CPU the caller ran on at detection */
    bool omp_bound;          /* OMP_PLACES or OMP_PROC_BIND set: libgomp owns the binding */
};

/* Reads the topology (hwloc + the process affinity mask + ADAKV_FAKE_NUMA, OMP_PLACES,
 * OMP_PROC_BIND). -1 with e set when hwloc fails or ADAKV_FAKE_NUMA is malformed or asks for
 * more nodes than there are usable cores. */
int threads_topology_detect(struct threads_topology *t, struct adakv_err *e);
void threads_topology_free(struct threads_topology *t);

/* Thread i of the engine's team runs on cpu[i] of the plan. */
struct threads_plan {
    int n_threads;
    enum adakv_numa numa;
    bool pin;       /* false when libgomp owns the binding, or for one thread with numa off */
    bool omp_bound; /* OMP_PLACES or OMP_PROC_BIND set */
    bool fake;      /* nodes are ADAKV_FAKE_NUMA's */
    bool pinned;    /* threads_pin ran (the CPUs below are then the observed ones if !pin) */
    int *cpu;       /* [n_threads] OS CPU number, -1 = unknown */
    int *node;      /* [n_threads] planner's node of that CPU, -1 = unknown */
    int *mem_node;  /* [n_threads] real node for that thread's memory, -1 = unknown */
    char note[128]; /* why pinning did not happen, if it did not ("" otherwise) */
};

/* Plans n_threads threads over topology t for a --numa mode:
 *   off        thread i -> core i (wrapping when there are more threads than cores);
 *   distribute thread i -> node i % n_node, the (i / n_node)-th core of that node (wrapping);
 *   isolate    only the cores of the node the process started on, thread i -> its core i.
 * -1 with e set on n_threads < 1 or an unknown mode. */
int threads_plan_make(const struct threads_topology *t, enum adakv_numa numa, int n_threads,
                      struct threads_plan *p, struct adakv_err *e);
void threads_plan_free(struct threads_plan *p);

/* Threads to use when the caller did not say: one per usable core, or per core of the starting
 * node for isolate (more would share cores, and spinning OpenMP threads hate sharing). */
int threads_default_count(const struct threads_topology *t, enum adakv_numa numa);

/* Runs one OpenMP parallel region of plan->n_threads threads in which thread i pins itself to
 * cpu[i] (or, when !pin, records the CPU it runs on). libgomp keeps its team between regions, so
 * later regions of the same size run on the same pinned threads. Failures to pin are not errors
 * (the engine still runs): they are recorded in plan->note. Returns the team size obtained. */
int threads_pin(struct threads_plan *p);

/* "threads = 2 pinned to cores 0,1 (node 0), numa off" */
void threads_plan_describe(const struct threads_plan *p, char *buf, size_t size);

/* adakv_numa_parse (adakv.h) is defined in threads.c. */
const char *threads_numa_name(enum adakv_numa numa);

#endif
