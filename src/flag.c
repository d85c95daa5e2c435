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

int flag_split_list(const char *flag, char *list, const char **items, int max, int *n, bool unique,
                    struct adakv_err *e) {
    *n = 0;
    for (char *p = list;; p++) {
        char *comma = strchr(p, ',');
        if (comma)
            *comma = '\0';
        if (!*p)
            return err_set(e, "%s: empty item in the list", flag);
        for (int i = 0; unique && i < *n; i++)
            if (!strcmp(items[i], p))
                return err_set(e, "%s: '%s' is listed twice", flag, p);
        if (*n == max)
            return err_set(e, "%s: more than %d items", flag, max);
        items[(*n)++] = p;
        if (!comma)
            return 0;
        p = comma;
    }
}
