#!/usr/bin/env python3
"""Golden next-token logits from the reference (llama.cpp through llama-cpp-python).

What: teacher-forces the first N_POS tokens of a text (default 2,048 tokens of
tests/data/text/perplexity-en.txt) in ONE context with the default model, and stores for every
position the top-16 token ids with their raw logits and the log-sum-exp over the full vocabulary,
plus the input token ids (format: tools/golden/llama_reference.py). A test can then compute
KL(llama.cpp || adakv) over the top-16 mass plus a tail bucket, and top-1 agreement.
Also records, in the sidecar .json, the exact settings, the reference version, and the token
counts of every text in tests/data/text/.

Rerun (from the repository root, about a minute on 2 cores):
    python3 tools/golden/make-logits.py
    LLAMA_CPP_SDIST=/path/to/llama_cpp_python-X.Y.Z python3 tools/golden/make-logits.py
(the sdist only tells the vendored llama.cpp commit). Deterministic: 2 threads, batch 512,
no sampling. Writes tests/data/golden/logits-perplexity-en.bin and .json.
"""

import argparse
import glob
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_reference as ref  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", help="GGUF file (default: $ADAKV_MODEL or the default model)")
    ap.add_argument("--text", default=os.path.join(ref.REPO, "tests/data/text/perplexity-en.txt"))
    ap.add_argument("--n-pos", type=int, default=2048, help="positions (tokens) to teacher-force")
    ap.add_argument("--k", type=int, default=16, help="top logits stored per position")
    ap.add_argument("--out", default=ref.GOLDEN_LOGITS)
    args = ap.parse_args()

    model = ref.model_path(args.model)
    llm, settings = ref.open_reference(model, n_ctx=args.n_pos)
    text = open(args.text, "rb").read()
    all_tokens = ref.tokenize_text(llm, text)
    if len(all_tokens) < args.n_pos:
        sys.exit(f"{args.text}: only {len(all_tokens)} tokens, fewer than --n-pos {args.n_pos}")
    tokens = all_tokens[: args.n_pos]

    t0 = time.time()
    llm.reset()
    llm.eval(tokens)
    rows = np.array(llm.scores[: args.n_pos], dtype=np.float32)
    seconds = time.time() - t0
    if not np.isfinite(rows).all():
        sys.exit("reference produced non-finite logits")

    ref.write_logits(args.out, tokens, rows, args.k)
    golden = ref.read_logits(args.out)
    p_top = np.exp(golden["logits"].astype(np.float64) - golden["lse"][:, None]).sum(axis=1)
    # the stored next token is the input of the following position
    nll = golden["lse"][:-1] - rows[np.arange(args.n_pos - 1), tokens[1:]]

    counts = {}
    for path in sorted(glob.glob(os.path.join(ref.REPO, "tests/data/text/*.txt"))):
        counts[os.path.relpath(path, ref.REPO)] = {
            "bytes": os.path.getsize(path),
            "sha256": ref.sha256_file(path),
            "tokens": len(ref.tokenize_text(llm, open(path, "rb").read())),
        }

    sidecar = {
        "what": "llama.cpp next-token logits, top-k per position, one context, teacher-forced",
        "format": "tools/golden/llama_reference.py (magic ADKVLOGT, version 1)",
        "made_by": "tools/golden/make-logits.py",
        "reference": ref.reference_info(),
        "model": os.path.basename(model),
        "model_sha256": ref.sha256_file(model),
        "text": os.path.relpath(args.text, ref.REPO),
        "text_tokens": len(all_tokens),
        "positions": "tokens [0, n_pos) of the text; record i is the distribution of token i+1",
        "n_pos": args.n_pos,
        "k": args.k,
        "n_vocab": golden["n_vocab"],
        "add_bos": ref.add_bos(llm),
        "first_token": tokens[0],
        "llama_settings": {
            **settings,
            "flash_attn": False,
            "type_k": "f16",
            "type_v": "f16",
            "note": "llama-cpp-python defaults for anything not listed",
        },
        "tokenize": "llm.tokenize(text, add_bos=True, special=False): special tokens as the vocab "
        "says (no BOS for SmolLM2), special-token text not parsed",
        "stats": {
            "mean_top_k_mass": float(p_top.mean()),
            "min_top_k_mass": float(p_top.min()),
            "perplexity_over_positions": float(np.exp(nll.mean())),
            "eval_seconds": round(seconds, 2),
        },
        "file_bytes": os.path.getsize(args.out),
        "file_sha256": ref.sha256_file(args.out),
        "text_token_counts": counts,
    }
    ref.write_json(os.path.splitext(args.out)[0] + ".json", sidecar)
    print(
        f"{args.out}: {args.n_pos} positions, k={args.k}, {sidecar['file_bytes']} bytes, "
        f"mean top-{args.k} mass {p_top.mean():.4f}, ppl {np.exp(nll.mean()):.4f}"
    )


if __name__ == "__main__":
    main()
