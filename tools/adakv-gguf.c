/* adakv-gguf: print a GGUF file's header, metadata and tensor table, validated by the same reader
 * the engine uses (so a file this program rejects is one adakv-run rejects, except that tensor
 * types adakv cannot compute with are listed here rather than refused).
 *
 * Usage: adakv-gguf [--full] [-n N] model.gguf */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"
#include "tensor-type.h"

struct show_opts {
    uint64_t max_elems; /* array elements shown per key */
    uint64_t max_chars; /* string bytes shown per value */
};

static void usage(FILE *out) {
    fprintf(out, "usage: adakv-gguf [--full] [-n N] model.gguf\n"
                 "  prints the header, every metadata key (type, count, value) and every tensor\n"
                 "  (type, shape, data offset, bytes), then a count of tensors per type\n"
                 "  -n N     show the first N elements of each array (default 5)\n"
                 "  --full   show every array element and whole strings\n");
}

/* ------------------------------------------------------------------------------------------ */
/* Values                                                                                       */

/* Strings come from the file: escape anything that could break the one-entry-per-line layout. */
static void print_str(struct gguf_str s, const struct show_opts *o) {
    uint64_t n = s.len < o->max_chars ? s.len : o->max_chars;
    putchar('"');
    for (uint64_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c == '\n')
            fputs("\\n", stdout);
        else if (c == '\t')
            fputs("\\t", stdout);
        else if (c < 0x20 || c == 0x7f)
            printf("\\x%02x", c);
        else
            putchar(c); /* UTF-8 bytes pass through so text stays readable */
    }
    putchar('"');
    if (n < s.len)
        printf("...(%" PRIu64 " bytes)", s.len);
}

/* Shortest %g form that reads back as the same float, so 1e-05 does not print as 9.99999975e-06. */
static void print_float(double v, bool is_f32) {
    char buf[40];
    for (int prec = 6; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, v);
        double back = strtod(buf, NULL);
        if (is_f32 ? (float)back == (float)v : back == v || isnan(v))
            break;
    }
    fputs(buf, stdout);
}

static uint16_t rd16(const uint8_t *p) {
    return (uint16_t)(p[0] | p[1] << 8);
}
static uint32_t rd32(const uint8_t *p) {
    return (uint32_t)rd16(p) | (uint32_t)rd16(p + 2) << 16;
}
static uint64_t rd64(const uint8_t *p) {
    return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static void print_scalar(enum gguf_type t, const uint8_t *p) {
    uint32_t b32;
    uint64_t b64;
    float f;
    double d;
    switch (t) {
    case GGUF_TYPE_UINT8:
        printf("%u", p[0]);
        break;
    case GGUF_TYPE_INT8:
        printf("%d", (int8_t)p[0]);
        break;
    case GGUF_TYPE_UINT16:
        printf("%u", rd16(p));
        break;
    case GGUF_TYPE_INT16:
        printf("%d", (int16_t)rd16(p));
        break;
    case GGUF_TYPE_UINT32:
        printf("%" PRIu32, rd32(p));
        break;
    case GGUF_TYPE_INT32:
        printf("%" PRId32, (int32_t)rd32(p));
        break;
    case GGUF_TYPE_UINT64:
        printf("%" PRIu64, rd64(p));
        break;
    case GGUF_TYPE_INT64:
        printf("%" PRId64, (int64_t)rd64(p));
        break;
    case GGUF_TYPE_FLOAT32:
        b32 = rd32(p);
        memcpy(&f, &b32, 4);
        print_float(f, true);
        break;
    case GGUF_TYPE_FLOAT64:
        b64 = rd64(p);
        memcpy(&d, &b64, 8);
        print_float(d, false);
        break;
    case GGUF_TYPE_BOOL:
        fputs(p[0] ? "true" : "false", stdout);
        break;
    default:
        fputs("?", stdout);
    }
}

static void print_array(const struct gguf_kv *kv, const struct show_opts *o) {
    uint64_t n = kv->arr_n < o->max_elems ? kv->arr_n : o->max_elems;
    size_t es = gguf_type_size(kv->arr_type);
    putchar('[');
    for (uint64_t i = 0; i < n; i++) {
        if (i)
            fputs(", ", stdout);
        if (kv->arr_type == GGUF_TYPE_STRING)
            print_str(gguf_arr_str(kv, i), o);
        else if (es)
            print_scalar(kv->arr_type, kv->data + i * es);
        else if (i == 0) /* nested arrays are validated but not indexed; show the first head */
            printf("[%s x %" PRIu64 "]", gguf_type_name((enum gguf_type)rd32(kv->data)),
                   rd64(kv->data + 4));
        else {
            fputs("...", stdout);
            break;
        }
    }
    if (n < kv->arr_n)
        printf("%s... (%" PRIu64 " more)", n ? ", " : "", kv->arr_n - n);
    putchar(']');
}

static void print_kvs(const struct gguf_file *f, const struct show_opts *o) {
    printf("\nmetadata: %" PRIu64 " entries\n", f->n_kv);
    printf("%6s  %-10s %9s  %s\n", "#", "type", "count", "key = value");
    for (uint64_t i = 0; i < f->n_kv; i++) {
        const struct gguf_kv *kv = &f->kv[i];
        char type[24];
        if (kv->type == GGUF_TYPE_ARRAY)
            snprintf(type, sizeof type, "[%s]", gguf_type_name(kv->arr_type));
        else
            snprintf(type, sizeof type, "%s", gguf_type_name(kv->type));
        printf("%6" PRIu64 "  %-10s %9" PRIu64 "  %.*s = ", i + 1, type,
               kv->type == GGUF_TYPE_ARRAY ? kv->arr_n : 1, (int)kv->key.len, kv->key.ptr);
        if (kv->type == GGUF_TYPE_ARRAY)
            print_array(kv, o);
        else if (kv->type == GGUF_TYPE_STRING)
            print_str((struct gguf_str){rd64(kv->data), (const char *)kv->data + 8}, o);
        else
            print_scalar(kv->type, kv->data);
        putchar('\n');
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Tensors                                                                                      */

static void print_tensors(const struct gguf_file *f) {
    printf("\ntensors: %" PRIu64 "\n", f->n_tensors);
    printf("%6s  %-7s %-26s %12s %12s  %s\n", "#", "type", "shape (ne0 first)", "offset", "bytes",
           "name");
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const struct gguf_tensor *t = &f->tensors[i];
        char shape[96];
        int len = 0;
        for (uint32_t d = 0; d < t->n_dims; d++)
            len += snprintf(shape + len, sizeof shape - (size_t)len, "%s%" PRIu64, d ? " x " : "",
                            t->ne[d]);
        printf("%6" PRIu64 "  %-7s %-26s %12" PRIu64 " %12" PRIu64 "  %s\n", i + 1,
               tensor_type_name(t->type), shape, t->offset, t->nbytes, t->name);
    }
}

static void print_type_counts(const struct gguf_file *f) {
    uint64_t counts[TENSOR_TYPE_COUNT], bytes[TENSOR_TYPE_COUNT] = {0};
    gguf_count_tensor_types(f, counts);
    for (uint64_t i = 0; i < f->n_tensors; i++)
        bytes[f->tensors[i].type] += f->tensors[i].nbytes;
    printf("\ntensor types:\n");
    /* most frequent first; a repeated selection pass is fine for ~40 types */
    bool shown[TENSOR_TYPE_COUNT] = {false};
    for (;;) {
        int best = -1;
        for (int t = 0; t < TENSOR_TYPE_COUNT; t++)
            if (counts[t] && !shown[t] && (best < 0 || counts[t] > counts[best]))
                best = t;
        if (best < 0)
            break;
        shown[best] = true;
        printf("  %-7s %6" PRIu64 " tensors %14" PRIu64 " bytes%s\n", tensor_type_name(best),
               counts[best], bytes[best],
               tensor_type_supported(best) ? "" : "  (not supported by adakv)");
    }
}

int main(int argc, char **argv) {
    struct show_opts o = {5, 60};
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--full")) {
            o.max_elems = o.max_chars = UINT64_MAX;
        } else if (!strcmp(argv[i], "-n") && i + 1 < argc) {
            char *end;
            o.max_elems = strtoull(argv[++i], &end, 10);
            if (*end || argv[i][0] == '-' || !argv[i][0]) {
                fprintf(stderr, "adakv-gguf: -n: '%s' is not a non-negative integer\n", argv[i]);
                return 2;
            }
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "adakv-gguf: unknown option '%s' (see --help)\n", argv[i]);
            return 2;
        } else if (path) {
            fprintf(stderr, "adakv-gguf: more than one file given ('%s', '%s')\n", path, argv[i]);
            return 2;
        } else {
            path = argv[i];
        }
    }
    if (!path) {
        usage(stderr);
        return 2;
    }
    struct adakv_err e;
    struct gguf_file *f = gguf_open_flags(path, GGUF_OPEN_ANY_KNOWN_TYPE, &e);
    if (!f) {
        fprintf(stderr, "adakv-gguf: %s\n", e.msg);
        return 1;
    }
    printf("file: %s\n", path);
    printf("gguf version %" PRIu32 ", %zu bytes, %" PRIu64 " metadata entries, %" PRIu64
           " tensors, alignment %" PRIu64 ", data section at %" PRIu64 "\n",
           f->version, f->size, f->n_kv, f->n_tensors, f->alignment, f->data_offset);
    print_kvs(f, &o);
    print_tensors(f);
    print_type_counts(f);
    gguf_close(f);
    return 0;
}
