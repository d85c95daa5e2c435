/* How much memory this machine can give a process: what a context's memory plan (model + KV
 * cache + scratch, computed before anything is allocated) is checked against, so that a -c too
 * large for the machine is one line instead of the OOM killer. */
#ifndef ADAKV_MEM_PLAN_H
#define ADAKV_MEM_PLAN_H

#include <stdint.h>

/* Physical RAM (sysinfo), capped by a cgroup v2 memory.max when one is set (containers, CI
 * runners); 0 if neither can be read (then nothing is refused). */
uint64_t mem_plan_ram_bytes(void);

#endif
