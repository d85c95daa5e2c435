/* The machine's memory (mem-plan.h). RAM from sysinfo(2) rather than /proc/meminfo's
 * MemAvailable: the check refuses only what cannot fit at all, not what needs the page cache
 * evicted first. */
#include "mem-plan.h"

#include <inttypes.h>
#include <stdio.h>
#include <sys/sysinfo.h>

/* The cgroup v2 limit of this process's group, or 0 ("max", cgroup v1, or unreadable). */
static uint64_t cgroup_limit(void) {
    FILE *f = fopen("/sys/fs/cgroup/memory.max", "r");
    if (!f)
        return 0;
    uint64_t v = 0;
    if (fscanf(f, "%" SCNu64, &v) != 1)
        v = 0;
    fclose(f);
    return v;
}

uint64_t mem_plan_ram_bytes(void) {
    struct sysinfo si;
    uint64_t ram = sysinfo(&si) == 0 ? (uint64_t)si.totalram * si.mem_unit : 0;
    const uint64_t cg = cgroup_limit();
    if (cg && (!ram || cg < ram))
        ram = cg;
    return ram;
}
