"""Shared helpers for the golden-data scripts: open the reference (llama.cpp through
llama-cpp-python) with fixed settings, describe exactly which reference produced a file, and the
golden-logits file format (writer, reader and the top-k KL estimate the C tests also use).

Golden logits file (little-endian throughout):

    offset  size        field
    0       8           magic "ADKVLOGT"
    8       4  u32      version (1)
    12      4  u32      n_pos: positions stored (= input tokens)
    16      4  u32      k: top logits stored per position
    20      4  u32      n_vocab
    24      4*n_pos     u32 input token ids, in order (position i holds token i)
    then n_pos records, one per position i (the distribution of token i+1 given tokens 0..i):
            4  f32      log-sum-exp of the raw logits over the full vocabulary (computed in f64)
            4*k u32     token ids of the k largest logits, largest first, ties to the lower id
            4*k f32     their raw logits, same order

With p_j = exp(logit_j - lse), KL(ref || test) over the stored ids plus one tail bucket is
    sum_j p_j log(p_j / q_j) + (1 - P) log((1 - P) / (1 - Q)),
P and Q being the two distributions' mass on the stored ids; it is a lower bound of the full KL
(grouping the tail can only lose information) and is what the engine's logit test asserts.
"""

import hashlib
import json
import os
import struct
import sys

import numpy as np

MAGIC = b"ADKVLOGT"
VERSION = 1
HEADER = struct.Struct("<8sIIII")

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_MODEL = os.path.join(REPO, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
GOLDEN_LOGITS = os.path.join(REPO, "tests", "data", "golden", "logits-perplexity-en.bin")

# Fixed so that reruns give the same numbers; seed only matters for sampling, never used here.
N_THREADS = 2
N_BATCH = 512
SEED = 0


def model_path(arg):
    return arg or os.environ.get("ADAKV_MODEL") or DEFAULT_MODEL


def open_reference(path, n_ctx, logits_all=True, **extra):
    import llama_cpp

    if not os.path.isfile(path):
        sys.exit(f"{path}: model file not found (run tools/fetch-model.sh)")
    settings = dict(
        n_ctx=n_ctx,
        n_batch=N_BATCH,
        n_ubatch=N_BATCH,
        n_threads=N_THREADS,
        n_threads_batch=N_THREADS,
        seed=SEED,
        logits_all=logits_all,
    )
    settings.update(extra)
    llm = llama_cpp.Llama(model_path=path, verbose=False, **settings)
    return llm, settings


def add_bos(llm):
    import llama_cpp

    return bool(llama_cpp.llama_vocab_get_add_bos(llama_cpp.llama_model_get_vocab(llm.model)))


def tokenize_text(llm, text_bytes):
    # add_bos=True here means "add the special tokens the vocab asks for" (llama_tokenize's
    # add_special), exactly what llama-perplexity's common_tokenize(ctx, text, true) does.
    return llm.tokenize(text_bytes, add_bos=True, special=False)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def vendored_commit():
    """The llama.cpp commit llama-cpp-python vendors is only written in the sdist's CHANGELOG
    ("update llama.cpp to ggml-org/llama.cpp@<commit>"); look for an unpacked sdist."""
    import glob
    import re

    import llama_cpp

    ver = llama_cpp.__version__
    candidates = [os.environ.get("LLAMA_CPP_SDIST", "")]
    candidates += glob.glob(os.path.join(REPO, "perf", "peer", f"llama_cpp_python-{ver}"))
    candidates += glob.glob(f"/tmp/*/llama_cpp_python-{ver}")
    for d in candidates:
        log = os.path.join(d, "CHANGELOG.md")
        if d and os.path.isfile(log):
            text = open(log, encoding="utf-8").read()
            section = text.split(f"## [{ver}]", 1)[-1].split("\n## [", 1)[0]
            m = re.search(r"llama\.cpp@([0-9a-f]{7,40})", section)
            if m:
                return m.group(1)
    return "unknown (unpack the llama-cpp-python sdist and set LLAMA_CPP_SDIST)"


def reference_info():
    import llama_cpp

    return {
        "llama_cpp_python": llama_cpp.__version__,
        "llama_cpp_commit": vendored_commit(),
        "llama_cpp_system_info": llama_cpp.llama_print_system_info().decode().strip(),
    }


def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, sort_keys=False)
        f.write("\n")


def log_sum_exp(rows):
    rows = rows.astype(np.float64)
    m = rows.max(axis=1, keepdims=True)
    return (m[:, 0] + np.log(np.exp(rows - m).sum(axis=1))).astype(np.float64)


def top_k(rows, k):
    """Ids of the k largest logits per row, largest first, ties to the lower id."""
    ids = np.empty((rows.shape[0], k), dtype=np.uint32)
    for i, row in enumerate(rows):
        # a stable sort of the negated row keeps equal logits in id order
        ids[i] = np.argsort(-row, kind="stable")[:k]
    return ids


def write_logits(path, tokens, rows, k):
    n_pos, n_vocab = rows.shape
    if len(tokens) != n_pos:
        raise ValueError("one token per position expected")
    lse = log_sum_exp(rows)
    ids = top_k(rows, k)
    with open(path, "wb") as f:
        f.write(HEADER.pack(MAGIC, VERSION, n_pos, k, n_vocab))
        f.write(np.asarray(tokens, dtype="<u4").tobytes())
        for i in range(n_pos):
            f.write(struct.pack("<f", lse[i]))
            f.write(ids[i].astype("<u4").tobytes())
            f.write(rows[i, ids[i]].astype("<f4").tobytes())


def read_logits(path):
    data = open(path, "rb").read()
    if len(data) < HEADER.size:
        raise ValueError(f"{path}: shorter than the header")
    magic, version, n_pos, k, n_vocab = HEADER.unpack_from(data, 0)
    if magic != MAGIC or version != VERSION:
        raise ValueError(f"{path}: not a version {VERSION} golden logits file")
    rec = 4 + 8 * k
    if len(data) != HEADER.size + 4 * n_pos + n_pos * rec:
        raise ValueError(f"{path}: size does not match n_pos={n_pos} k={k}")
    off = HEADER.size
    tokens = np.frombuffer(data, dtype="<u4", count=n_pos, offset=off)
    off += 4 * n_pos
    recs = np.frombuffer(data, dtype=np.uint8, offset=off).reshape(n_pos, rec)
    lse = recs[:, 0:4].copy().view("<f4")[:, 0].astype(np.float64)
    ids = recs[:, 4 : 4 + 4 * k].copy().view("<u4")
    logits = recs[:, 4 + 4 * k :].copy().view("<f4")
    return dict(n_vocab=n_vocab, k=k, tokens=tokens, lse=lse, ids=ids, logits=logits)


def kl_top_k(golden, rows):
    """Per-position KL(golden || rows) over the stored top-k ids plus one tail bucket, and
    whether the two argmaxes agree. rows: full-vocabulary logits of the engine under test."""
    ref_logp = golden["logits"].astype(np.float64) - golden["lse"][:, None]
    p = np.exp(ref_logp)
    test_lse = log_sum_exp(rows)
    test_logp = np.take_along_axis(rows.astype(np.float64), golden["ids"].astype(np.int64), 1)
    test_logp -= test_lse[:, None]
    q = np.exp(test_logp)
    kl = (p * (ref_logp - test_logp)).sum(axis=1)
    tail_p = np.clip(1.0 - p.sum(axis=1), 1e-30, None)
    tail_q = np.clip(1.0 - q.sum(axis=1), 1e-30, None)
    kl += tail_p * np.log(tail_p / tail_q)
    agree = rows.argmax(axis=1) == golden["ids"][:, 0]
    return kl, agree
