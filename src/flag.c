#include "flag.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

bool flag_is(const char *arg, const char *name, const char *alias) {
    return !strcmp(arg, name) || (alias && !strcmp(arg, alias));
}

int flag_parse_long(const char *flag, const char *s, long lo, long hi, long *out,
                    struct adakv_err *e) {
    if (!s)
        return err_set(e, "%s: missing value", flag);
    char *end;
    errno = 0;
    const long v = strtol(s, &end, 10);
    if (errno || end == s || *end != '\0')
        return err_set(e, "%s: '%s' is not an integer", flag, s);
    if (v < lo || v > hi)
        return err_set(e, "%s: %ld is out of range [%ld, %ld]", flag, v, lo, hi);
    *out = v;
    return 0;
}

int flag_parse_int(const char *flag, const char *s, int lo, int hi, int *out, struct adakv_err *e) {
    long v = 0;
    if (flag_parse_long(flag, s, lo, hi, &v, e))
        return -1;
    *out = (int)v;
    return 0;
}
