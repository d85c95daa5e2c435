#!/usr/bin/env python3
"""Golden logits of llama.cpp for the tiny random Llama-3-shaped model (tests/tiny-llama.h) and
its Qwen2 and Qwen3 variants.

What: writes the model with the C program tests/make-tiny-llama (built by `make` in a build
directory; it is deterministic, so the test rebuilds the identical file), teacher-forces N_POS
random token ids (fixed seed, drawn from the non-special ids) through llama.cpp in one context
with the golden settings of the other files (2 threads, batch 512, f16 KV, flash attention off),
and stores the top-16 logits per position (format: tools/golden/llama_reference.py).

Why: the default model exercises Q4_1 and Q8_0 weights, head_dim 64, a tied head and a BPE
vocabulary only. This model takes the other paths of a Llama-family file: every K-quant and
32-block type, F16/BF16/F32 weights, head_dim 128, GQA 4, Llama 3.1's RoPE factors, an untied
head and a SentencePiece vocabulary, all judged against llama.cpp.

The Qwen variants (same weights plus Q/K/V biases for qwen2, per-head Q/K norms for qwen3, NEOX
RoPE) judge the llama family's two relatives the same way, and qwen2-yarn (qwen2 with YaRN
metadata: factor 4 over an original context of 2048) judges the YaRN RoPE. gemma3 judges Gemma
3's blocks (post-norms, GELU-tanh gate, scaled embeddings, two sliding-window layers of 48
positions with their own RoPE base beside a global one with linear scaling, soft-capped logits):
with 192 positions the windows cut most of each sliding layer's keys.

Rerun (from the repository root, seconds):
    python3 tools/golden/make-tiny-logits.py [--maker build/tests/make-tiny-llama] [--arch A]
Writes tests/data/golden/logits-tiny-{llama,qwen2,qwen3,qwen2-yarn,gemma3}.bin and .json.
"""

import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_reference as ref  # noqa: E402

N_POS = 192
VOCAB = 300
FIRST_ID = 3  # ids 0..2 are <unk> <s> </s>
SEED = 20261126
VARIANTS = ["llama", "qwen2", "qwen3", "qwen2-yarn", "gemma3"]  # tests/tiny-llama.h


def make(maker, arch, out):
    with tempfile.TemporaryDirectory() as tmp:
        model = os.path.join(tmp, f"tiny-{arch}.gguf")
        subprocess.run([maker, model, arch], check=True)
        tokens = [int(t) for t in np.random.default_rng(SEED).integers(FIRST_ID, VOCAB, N_POS)]
        llm, settings = ref.open_reference(model, n_ctx=256, flash_attn=False, type_k=1, type_v=1)
        llm.eval(tokens)
        rows = np.array(llm.scores[:N_POS], dtype=np.float32)
        if not np.isfinite(rows).all():
            sys.exit(f"{arch}: reference produced non-finite logits")
        ref.write_logits(out, tokens, rows, 16)
        sha = ref.sha256_file(model)
    golden = ref.read_logits(out)
    p = np.exp(golden["logits"].astype(np.float64) - golden["lse"][:, None])
    top2 = golden["logits"][:, 0] - golden["logits"][:, 1]
    ref.write_json(os.path.splitext(out)[0] + ".json", {
        "made_by": "tools/golden/make-tiny-logits.py",
        "model": f"tests/make-tiny-llama OUT {arch} (tests/tiny-llama.h), sha256 {sha}",
        "tokens": f"{N_POS} ids from numpy default_rng({SEED}).integers({FIRST_ID}, {VOCAB})",
        "llama_settings": {**settings, "flash_attn": False, "type_k": "f16", "type_v": "f16"},
        "reference": ref.reference_info(),
        "mean_top1_prob": float(p[:, 0].mean()),
        "median_top1_top2_margin": float(np.median(top2)),
    })
    print(f"{out}: {N_POS} positions, mean top-1 probability {p[:, 0].mean():.3f}, "
          f"median top-1/top-2 logit margin {np.median(top2):.3f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--maker", default=os.path.join(ref.REPO, "build", "tests", "make-tiny-llama"))
    ap.add_argument("--arch", choices=VARIANTS + ["all"], default="all")
    args = ap.parse_args()
    if not os.access(args.maker, os.X_OK):
        sys.exit(f"{args.maker}: not built (make -C build tests/make-tiny-llama)")
    for arch in VARIANTS if args.arch == "all" else [args.arch]:
        make(args.maker, arch, os.path.join(ref.REPO, "tests", "data", "golden",
                                            f"logits-tiny-{arch}.bin"))


if __name__ == "__main__":
    main()
