#!/usr/bin/env python3
"""Golden perplexity from the reference, computed the way llama.cpp's llama-perplexity does.

What: the perplexity of tests/data/text/perplexity-en.txt with the default model for -c 512 and
-c 1024, following tools/perplexity/perplexity.cpp (function `perplexity`) of the llama.cpp that
llama-cpp-python vendors:
  - tokenize the whole text once, special tokens as the vocab says (BOS only if add_bos; SmolLM2:
    no), special-token text not parsed; at least 2 * n_ctx tokens are required;
  - n_chunk = n_tokens / n_ctx (integer division; the remainder is dropped); chunk i is tokens
    [i*n_ctx, (i+1)*n_ctx), evaluated from an empty KV cache at positions 0..n_ctx-1, its first
    token replaced by BOS if the vocab adds BOS;
  - only the second half is scored: logits at positions first = n_ctx/2 .. n_ctx-2 predict
    tokens first+1 .. n_ctx-1 (n_ctx - first - 1 tokens per chunk), with
    nll = max + log(sum exp(logit - max)) - logit[target], exp in f32 summed in f64;
  - after each chunk the running estimate exp(sum nll / count) is printed; the final PPL is the
    last one, +/- ppl * sqrt((mean nll^2 - mean nll^2) / (count - 1)).
Runs the reference with flash attention off (as the golden logits) and on (llama-perplexity's
default -fa auto picks it on this CPU), and stores both.

Rerun (from the repository root, a few minutes on 2 cores):
    python3 tools/golden/make-perplexity.py [--ctx 512 1024] [--llama-perplexity BIN]
With --llama-perplexity (perf/peer/bin/llama-perplexity from perf/build-peer.sh) it also runs the
real tool on the same file and settings and stores its final estimates beside ours; add
--confirm-only off|on|both to keep the Python results already stored and only run the tool.
Writes tests/data/golden/perplexity.json.
"""

import argparse
import json
import math
import os
import re
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_reference as ref  # noqa: E402


def chunk_nll(rows, targets):
    """Negative log-likelihood of each target under its logits row, as perplexity.cpp's
    log_softmax: f32 logits, expf of (logit - max) in f32, summed in f64."""
    rows = rows.astype(np.float32)
    mx = rows.max(axis=1)
    sum_exp = np.exp(rows - mx[:, None]).astype(np.float64).sum(axis=1)
    picked = rows[np.arange(len(targets)), targets].astype(np.float64)
    return mx.astype(np.float64) + np.log(sum_exp) - picked


def perplexity(model, tokens, bos, n_ctx, flash_attn):
    llm, settings = ref.open_reference(model, n_ctx=n_ctx, flash_attn=flash_attn)
    n_chunk = len(tokens) // n_ctx
    first = n_ctx // 2
    nll_sum = nll2_sum = 0.0
    count = 0
    running = []
    t0 = time.time()
    for i in range(n_chunk):
        chunk = list(tokens[i * n_ctx : (i + 1) * n_ctx])
        if bos is not None:
            chunk[0] = bos
        llm.reset()  # the next eval removes every cached position >= 0
        llm.eval(chunk)
        rows = np.array(llm.scores[first : n_ctx - 1], dtype=np.float32)
        nll = chunk_nll(rows, np.array(chunk[first + 1 : n_ctx]))
        nll_sum += float(nll.sum())
        nll2_sum += float((nll * nll).sum())
        count += n_ctx - first - 1
        running.append(round(math.exp(nll_sum / count), 6))
        print(f"  -c {n_ctx} fa={int(flash_attn)} [{i + 1}/{n_chunk}] {running[-1]:.4f}",
              flush=True)
    mean = nll_sum / count
    var = nll2_sum / count - mean * mean
    ppl = math.exp(mean)
    return {
        "n_ctx": n_ctx,
        "flash_attn": flash_attn,
        "n_chunk": n_chunk,
        "scored_tokens": count,
        "ppl": round(ppl, 6),
        "ppl_stderr": round(ppl * math.sqrt(var / (count - 1)), 6),
        "mean_nll": round(mean, 8),
        "running_ppl_after_each_chunk": running,
        "seconds": round(time.time() - t0, 1),
        "llama_settings": {**settings, "type_k": "f16", "type_v": "f16"},
    }


def run_llama_perplexity(binary, model, text, n_ctx, flash_attn):
    cmd = [binary, "-m", model, "-f", text, "-c", str(n_ctx), "-b", "512", "-t", "2",
           "-fa", "on" if flash_attn else "off", "--no-warmup"]
    out = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    log = out.stdout + out.stderr
    m = re.search(r"Final estimate: PPL = ([0-9.]+) \+/- ([0-9.]+)", log)
    if out.returncode != 0 or not m:
        sys.exit(f"{binary} failed ({out.returncode}):\n{log[-2000:]}")
    running = [float(x) for x in re.findall(r"\[\d+\]([0-9.]+),", log)]
    return {
        "command": " ".join(os.path.relpath(c, ref.REPO) if os.path.isabs(c) else c for c in cmd),
        "ppl": float(m.group(1)),
        "ppl_stderr": float(m.group(2)),
        "running_ppl_after_each_chunk": running,
    }


def confirm(args):
    if not args.llama_perplexity:
        sys.exit("--confirm-only needs --llama-perplexity")
    data = json.load(open(args.out, encoding="utf-8"))
    model = ref.model_path(args.model)
    text = os.path.join(ref.REPO, data["text"])
    for r in data["results"]:
        fa_ok = args.confirm_only == "both" or r["flash_attn"] == (args.confirm_only == "on")
        if r["n_ctx"] in args.ctx and fa_ok:
            r["llama_perplexity"] = run_llama_perplexity(
                args.llama_perplexity, model, text, r["n_ctx"], r["flash_attn"])
            print(f"-c {r['n_ctx']} flash_attn={r['flash_attn']}: ours {r['ppl']:.4f}, "
                  f"llama-perplexity {r['llama_perplexity']['ppl']:.4f}", flush=True)
            ref.write_json(args.out, data)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model")
    ap.add_argument("--text", default=os.path.join(ref.REPO, "tests/data/text/perplexity-en.txt"))
    ap.add_argument("--ctx", type=int, nargs="+", default=[512, 1024])
    ap.add_argument("--llama-perplexity", help="llama-perplexity binary to confirm against")
    ap.add_argument("--out", default=os.path.join(ref.REPO, "tests/data/golden/perplexity.json"))
    ap.add_argument("--confirm-only", choices=["off", "on", "both"],
                    help="keep the Python results already in --out and only run --llama-perplexity "
                    "for the entries with this flash-attention setting (and --ctx)")
    args = ap.parse_args()

    if args.confirm_only:
        confirm(args)
        return

    model = ref.model_path(args.model)
    vocab_llm, _ = ref.open_reference(model, n_ctx=512, logits_all=False)
    tokens = ref.tokenize_text(vocab_llm, open(args.text, "rb").read())
    bos = vocab_llm.token_bos() if ref.add_bos(vocab_llm) else None
    del vocab_llm

    results = []
    for n_ctx in args.ctx:
        if len(tokens) < 2 * n_ctx:
            sys.exit(f"{args.text}: {len(tokens)} tokens, fewer than 2 * n_ctx = {2 * n_ctx}")
        for fa in (False, True):
            r = perplexity(model, tokens, bos, n_ctx, fa)
            if args.llama_perplexity:
                r["llama_perplexity"] = run_llama_perplexity(
                    args.llama_perplexity, model, args.text, n_ctx, fa)
                print(f"  llama-perplexity: {r['llama_perplexity']['ppl']:.4f}")
            print(f"-c {n_ctx} flash_attn={fa}: PPL = {r['ppl']:.4f} +/- {r['ppl_stderr']:.5f}")
            results.append(r)

    ref.write_json(
        args.out,
        {
            "what": "perplexity of the text as llama.cpp's llama-perplexity computes it",
            "made_by": "tools/golden/make-perplexity.py (method in its docstring)",
            "reference": ref.reference_info(),
            "model": os.path.basename(model),
            "model_sha256": ref.sha256_file(model),
            "text": os.path.relpath(args.text, ref.REPO),
            "text_sha256": ref.sha256_file(args.text),
            "text_tokens": len(tokens),
            "add_bos": bos is not None,
            "scoring": "second half of each n_ctx chunk: positions n_ctx/2 .. n_ctx-2 predict the "
            "next token; remainder tokens after the last full chunk are dropped",
            "primary": "flash_attn false (same settings as the golden logits)",
            "results": results,
        },
    )


if __name__ == "__main__":
    main()
