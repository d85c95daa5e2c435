#!/usr/bin/env python3
"""Checks a golden logits file against a fresh llama.cpp run, and measures the noise floor.

What: reads tests/data/golden/logits-perplexity-en.bin (format: llama_reference.py), reruns
llama.cpp on its stored input tokens with the golden settings and with variants (flash attention,
q8_0 KV cache, 1 thread), and prints mean/max KL(golden || variant) over the top-k plus tail and
top-1 agreement. The golden settings must give KL 0 and 100% agreement (the file is reproducible
and the reader and KL code are right); the variants show how far llama.cpp moves from itself,
which puts the engine's bounds (mean KL <= 0.01, top-1 >= 99%) in scale.

With --lib DIR the llama.cpp libraries come from DIR (a different build of the same commit, e.g.
tools/golden/build-llama-avx2.sh: AVX2 instead of the native AVX-512): then nothing is required
to reproduce, and the figures show how far llama.cpp moves from itself when only its SIMD code
paths change.

Rerun: python3 tools/golden/check-logits.py [--file F] [--model M] [--lib DIR]
(a few minutes on 2 cores). Writes nothing.
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_reference as ref  # noqa: E402

VARIANTS = {
    "golden settings": {},
    "flash attention": {"flash_attn": True},
    "q8_0 KV + flash attention": {"flash_attn": True, "type_k": 8, "type_v": 8},  # GGML_TYPE_Q8_0
    "1 thread": {"n_threads": 1, "n_threads_batch": 1},
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--file", default=ref.GOLDEN_LOGITS)
    ap.add_argument("--model")
    ap.add_argument("--lib", help="directory of another build's libllama.so (LLAMA_CPP_LIB_PATH)")
    args = ap.parse_args()
    if args.lib:  # read by llama_cpp at import, which open_reference does lazily
        os.environ["LLAMA_CPP_LIB_PATH"] = os.path.abspath(args.lib)

    golden = ref.read_logits(args.file)
    tokens = [int(t) for t in golden["tokens"]]
    n_pos = len(tokens)
    failed = False
    for name, extra in VARIANTS.items():
        llm, _ = ref.open_reference(ref.model_path(args.model), n_ctx=n_pos, **extra)
        llm.eval(tokens)
        rows = np.array(llm.scores[:n_pos], dtype=np.float32)
        kl, agree = ref.kl_top_k(golden, rows)
        print(
            f"{name:28s} mean KL {kl.mean():.3e}  max KL {kl.max():.3e}  "
            f"top-1 agreement {100 * agree.mean():.2f}% ({int(agree.sum())}/{n_pos})"
        )
        # the stored f32 log-sum-exp alone moves KL by ~1e-7 at most
        if not extra and not args.lib and (kl.max() > 1e-6 or not agree.all()):
            failed = True
        del llm
    if failed:
        sys.exit("golden file is not reproduced by the golden settings")


if __name__ == "__main__":
    main()
