/* Tensor binding shared by the arch files: look a tensor up by its canonical name and check its
 * type and shape before anything reads it, so a mismatched file fails at load with one line
 * naming the tensor, what was expected and what the file holds. */
#include <inttypes.h>
#include <stdio.h>

#include "arch.h"
#include "matmul.h"
#include "tensor-type.h"

bool arch_type_is_f32(uint32_t type) {
    return type == TENSOR_TYPE_F32;
}

bool arch_type_is_matrix(uint32_t type) {
    return matmul_type_supported(type);
}

static void shape_str(char *buf, size_t size, int n_dims, const uint64_t *ne) {
    int off = snprintf(buf, size, "[");
    for (int i = 0; i < n_dims && off > 0 && (size_t)off < size; i++)
        off += snprintf(buf + off, size - off, "%s%" PRIu64, i ? ", " : "", ne[i]);
    if (off > 0 && (size_t)off < size)
        snprintf(buf + off, size - off, "]");
}

int arch_bind_tensor(const struct gguf_file *f, const char *name, int n_dims, const int64_t *ne,
                     bool (*type_ok)(uint32_t type), const char *type_desc, bool required,
                     const struct gguf_tensor **out, struct adakv_err *e) {
    const struct gguf_tensor *t = gguf_find_tensor(f, name);
    *out = NULL;
    if (!t) {
        if (required)
            return err_set(e, "%s: missing tensor '%s'", f->path, name);
        return 0;
    }
    /* Trailing dims of size 1 are the same shape (writers differ in n_dims for vectors). */
    bool same = t->n_dims >= 1 && t->n_dims <= GGUF_MAX_DIMS;
    for (int i = 0; same && i < GGUF_MAX_DIMS; i++) {
        const uint64_t want = i < n_dims ? (uint64_t)ne[i] : 1;
        same = t->ne[i] == want;
    }
    if (!same) {
        uint64_t want[GGUF_MAX_DIMS];
        for (int i = 0; i < n_dims; i++)
            want[i] = (uint64_t)ne[i];
        char a[96], b[96];
        shape_str(a, sizeof a, n_dims, want);
        shape_str(b, sizeof b, (int)t->n_dims, t->ne);
        return err_set(e, "%s: tensor '%s' has shape %s, expected %s", f->path, name, b, a);
    }
    if (!type_ok(t->type))
        return err_set(e, "%s: tensor '%s' has type %s, expected %s", f->path, name,
                       tensor_type_name(t->type), type_desc);
    *out = t;
    return 0;
}
