/* The environment make check gives every test (Makefile.am, AM_TESTS_ENVIRONMENT):
 * ADAKV_SRCDIR, ADAKV_BUILDDIR, ADAKV_MODEL. A missing one fails the test with its name. */
#ifndef ADAKV_TEST_ENV_H
#define ADAKV_TEST_ENV_H

#include <criterion/criterion.h>
#include <stdlib.h>

static inline const char *env(const char *k) {
    const char *v = getenv(k);
    cr_assert(v, "%s is not set (run through make check)", k);
    return v;
}

#endif
