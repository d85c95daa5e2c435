/* The request channel (job.h): reference counting, stop strings, waiting. */
#include "job.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adakv.h"

double job_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

struct job *job_new(enum job_kind kind) {
    struct job *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->kind = kind;
    j->refs = 1;
    j->gen.max_tokens = -1;
    j->gen.temp = 0.8f;
    j->gen.top_k = 40;
    j->gen.top_p = 0.95f;
    j->t_queued = job_now();
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    return j;
}

void job_ref(struct job *j) {
    pthread_mutex_lock(&j->mu);
    j->refs++;
    pthread_mutex_unlock(&j->mu);
}

void job_unref(struct job *j) {
    if (!j)
        return;
    pthread_mutex_lock(&j->mu);
    const int left = --j->refs;
    pthread_mutex_unlock(&j->mu);
    if (left)
        return;
    free(j->tokens);
    free(j->q);
    free(j->rec);
    free(j->text);
    free(j->result);
    for (int i = 0; i < j->gen.n_stop; i++)
        free(j->gen.stop[i]);
    adakv_press_free(j->press);
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
    free(j);
}

/* Longest suffix of text[0..len) that is a proper prefix of a stop string: those bytes may
 * still turn into a stop and must not reach the client yet. */
static size_t stop_holdback(const struct job *j) {
    size_t best = 0;
    for (int i = 0; i < j->gen.n_stop; i++) {
        const char *s = j->gen.stop[i];
        const size_t sl = strlen(s);
        for (size_t k = sl - 1; k > best; k--)
            if (k <= j->len && !memcmp(j->text + j->len - k, s, k)) {
                best = k;
                break;
            }
    }
    return best;
}

bool job_push_text(struct job *j, const char *s, size_t n) {
    pthread_mutex_lock(&j->mu);
    bool stopped = false;
    if (j->len + n + 1 > j->cap) {
        size_t cap = j->cap ? j->cap : 256;
        while (cap < j->len + n + 1)
            cap *= 2;
        char *t = realloc(j->text, cap);
        if (!t) {
            pthread_mutex_unlock(&j->mu);
            job_fail(j, 500, "server_error", "out of memory for the generated text");
            return true;
        }
        j->text = t;
        j->cap = cap;
    }
    const size_t old = j->len;
    memcpy(j->text + j->len, s, n);
    j->len += n;
    j->text[j->len] = '\0';
    /* a stop string can only end inside the new bytes: search from where it could start */
    size_t cut = j->len;
    for (int i = 0; i < j->gen.n_stop; i++) {
        const size_t sl = strlen(j->gen.stop[i]);
        const size_t from = old + 1 > sl ? old + 1 - sl : 0;
        const char *hit = memmem(j->text + from, j->len - from, j->gen.stop[i], sl);
        if (hit && (size_t)(hit - j->text) < cut)
            cut = (size_t)(hit - j->text);
    }
    if (cut < j->len) {
        j->len = cut;
        j->text[cut] = '\0';
        stopped = true;
    }
    j->ready = stopped ? j->len : j->len - stop_holdback(j);
    if (j->ready < j->sent) /* never take back what was sent (cannot happen; be safe) */
        j->ready = j->sent;
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
    return stopped;
}

void job_finish(struct job *j, const char *finish) {
    pthread_mutex_lock(&j->mu);
    if (!j->done) {
        j->done = true;
        j->finish = finish;
        j->ready = j->len; /* a held-back partial stop string is text after all */
        j->t_done = job_now();
    }
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
}

void job_fail(struct job *j, int status, const char *type, const char *fmt, ...) {
    pthread_mutex_lock(&j->mu);
    if (!j->done) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(j->err, sizeof j->err, fmt, ap);
        va_end(ap);
        j->status = status;
        j->err_type = type;
        j->done = true;
        j->t_done = job_now();
    }
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
}

bool job_is_cancelled(struct job *j) {
    pthread_mutex_lock(&j->mu);
    const bool c = j->cancelled;
    pthread_mutex_unlock(&j->mu);
    return c;
}

void job_wait(struct job *j, bool some) {
    pthread_mutex_lock(&j->mu);
    while (!j->done && !(some && j->ready > j->sent))
        pthread_cond_wait(&j->cv, &j->mu);
    pthread_mutex_unlock(&j->mu);
}

bool job_wait_for(struct job *j, double seconds, bool some) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until); /* the condition variable's default clock */
    const long long ns = until.tv_nsec + (long long)(seconds * 1e9);
    until.tv_sec += ns / 1000000000;
    until.tv_nsec = ns % 1000000000;
    pthread_mutex_lock(&j->mu);
    while (!j->done && !(some && j->ready > j->sent) &&
           pthread_cond_timedwait(&j->cv, &j->mu, &until) == 0)
        ;
    const bool done = j->done || (some && j->ready > j->sent);
    pthread_mutex_unlock(&j->mu);
    return done;
}

void job_cancel(struct job *j) {
    pthread_mutex_lock(&j->mu);
    j->cancelled = true;
    pthread_mutex_unlock(&j->mu);
}
