#!/usr/bin/env python3
"""Writes kvpress's keep-sets for tests/test_kvpress_keep.c (docs/kvpress.md).

Runs kvpress presses (SnapKV, PyramidKV, AdaKV(SnapKV), CriticalAdaKV(SnapKV)) on the default
model, dequantized from its GGUF file by transformers, over the token ids adakv's tokenizer gave
tests/data/kvpress/prompt.txt (tests/data/kvpress/tokens.txt), question-aware: the context and
the question are one prompt, prefilled and compressed together, as adakv-run --question-aware.

For every layer and KV head it records which token positions kvpress kept, and beside it the
adakv press settings that are meant to select the same rows (the mapping is explained in
docs/kvpress.md). One file per (press, ratio): tests/data/kvpress/<name>.txt.

usage: tools/kvpress/run.sh   (venv, tokens, then this script)
       python golden.py MODEL.gguf TOKENS.txt OUTDIR
"""
import importlib.metadata
import math
import os
import sys

import torch
import transformers
from transformers import AutoModelForCausalLM, DynamicCache

import kvpress
from kvpress import (AdaKVPress, CriticalAdaKVPress, PyramidKVPress, SnapKVPress)

WINDOW, KERNEL = 64, 5  # SnapKVPress defaults; adakv gets the same (its own default is 32, 7 max)
ALPHA, FIRST_STAGE, EPS = 0.2, 0.5, 1e-4  # AdaKVPress / CriticalAdaKVPress defaults
PYRAMID_BETA = 2  # see pyramid_case: kvpress's default 20 falls back to SnapKV at this length


def n_kept(L, r):
    return max(1, int(L * (1 - r)))  # kvpress.utils.compute_n_kept


def adakv_budget(L, r):
    # kv_press_head_budget: floor(len * (1 - ratio)) in float32
    import numpy as np
    return max(1, int(math.floor(np.float32(L) * (np.float32(1.0) - np.float32(r)))))


def base_settings(press, r):
    return {"press": press, "kv-ratio": f"{r}", "window": str(WINDOW),
            "pool-kernel": str(KERNEL), "pool": "avg"}


def ada_alpha(L, r):
    """adakv alpha giving the same per-head floor of prefix rows as kvpress's alpha_safeguard.

    kvpress forces each head's top int(n_kept * alpha) scores, window included (the window is
    padded with max + 1, so it comes first); adakv forces floor(alpha * b_sel) prefix rows,
    window excluded. Same floor: floor(alpha' * b_sel) = max(0, int(n_kept * alpha) - window)."""
    b_sel = adakv_budget(L, r) - WINDOW
    want = max(0, max(1, int(n_kept(L, r) * ALPHA)) - WINDOW)
    return 0.0 if want == 0 else (want + 0.5) / b_sel


def critical_ratio(L, r):
    """adakv's critical-ratio closest to kvpress's first_stage_ratio.

    kvpress's stage 1 keeps int(0.5 * B_h) rows of a head with budget B_h, window included;
    adakv's keeps floor(ratio * b_h) prefix rows, b_h = B_h - window. Equal for the mean head
    when ratio = (0.5 * B - window) / (B - window); heads above or below the mean differ by a
    few rows (docs/kvpress.md)."""
    B = adakv_budget(L, r)
    return max(0.0, (int(FIRST_STAGE * B) - WINDOW) / (B - WINDOW))


def pyramid_beta(L, r, beta):
    """adakv beta giving kvpress's PyramidKV layer budgets.

    kvpress: kept_l = max - l * step from max = 2b - b/beta down to min = b/beta, b = L(1-r),
    window inside. adakv: kept_l = window + (2 b_sel - b_sel/beta' - l * step'), b_sel = b -
    window. Same line when b_sel / beta' = b / beta - window."""
    b = L * (1 - r)
    b_sel = adakv_budget(L, r) - WINDOW
    return b_sel / (b / beta - WINDOW)


def cases(L):
    out = []
    for r in (0.5, 0.8):
        tag = f"{int(round(r * 100)):02d}"
        out.append((f"snapkv-{tag}", SnapKVPress(compression_ratio=r, window_size=WINDOW,
                                                 kernel_size=KERNEL), base_settings("snapkv", r)))
        s = base_settings("pyramid", r)
        s["beta"] = f"{pyramid_beta(L, r, PYRAMID_BETA):.6f}"
        out.append((f"pyramidkv-{tag}", PyramidKVPress(compression_ratio=r, window_size=WINDOW,
                                                       kernel_size=KERNEL, beta=PYRAMID_BETA), s))
        s = base_settings("snapkv", r)
        s.update({"ada": "kvpress", "alpha": f"{ada_alpha(L, r):.6f}"})
        out.append((f"adakv-{tag}", AdaKVPress(SnapKVPress(compression_ratio=r, window_size=WINDOW,
                                                           kernel_size=KERNEL),
                                               alpha_safeguard=ALPHA), s))
        s = base_settings("critical", r)
        s.update({"ada": "kvpress", "alpha": f"{ada_alpha(L, r):.6f}",
                  "critical-ratio": f"{critical_ratio(L, r):.6f}"})
        out.append((f"criticaladakv-{tag}",
                     CriticalAdaKVPress(SnapKVPress(compression_ratio=r, window_size=WINDOW,
                                                    kernel_size=KERNEL),
                                        alpha_safeguard=ALPHA, epsilon=EPS,
                                        first_stage_ratio=FIRST_STAGE), s))
    return out


def run_case(model, ids, press):
    """Prefills ids under press; returns kept[layer][head] = sorted positions."""
    kept = {}

    inner = press.compress

    def capture(module, hidden_states, keys, values, attentions, kwargs):
        k2, v2 = inner(module, hidden_states, keys, values, attentions, kwargs)
        layer = module.layer_idx
        L = keys.shape[2]
        if getattr(module, "masked_key_indices", None) is not None:
            # AdaKV-style presses keep the full cache and mask these (batch, head, pos) entries
            _, heads, pos = module.masked_key_indices
            mask = torch.ones(keys.shape[1], L, dtype=torch.bool)
            mask[heads, pos] = False
            kept[layer] = [torch.nonzero(mask[h]).flatten().tolist() for h in range(keys.shape[1])]
        else:
            # Scorer presses gather the kept rows: find each kept key among the full keys (rows
            # are distinct: every position has its own RoPE phase)
            kept[layer] = []
            for h in range(keys.shape[1]):
                full = keys[0, h]
                kk = k2[0, h]
                eq = (kk[:, None, :] == full[None, :, :]).all(-1)
                assert (eq.sum(1) == 1).all(), f"layer {layer} head {h}: ambiguous key match"
                kept[layer].append(sorted(eq.float().argmax(1).tolist()))
        return k2, v2

    press.compress = capture
    with torch.no_grad(), press(model):
        model(torch.tensor([ids]), past_key_values=DynamicCache(), use_cache=True)
    press.compress = inner
    return kept


def hexmask(pos, L):
    nib = [0] * ((L + 3) // 4)
    for p in pos:
        nib[p // 4] |= 1 << (p % 4)
    return "".join("0123456789abcdef"[x] for x in nib)


def main():
    model_path, tokens_path, outdir = sys.argv[1:4]
    ids = [int(x) for x in open(tokens_path).read().split()]
    L = len(ids)
    torch.manual_seed(0)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    model = AutoModelForCausalLM.from_pretrained(os.path.dirname(os.path.abspath(model_path)),
                                                 gguf_file=os.path.basename(model_path),
                                                 dtype=torch.float32)
    model.eval()
    cfg = model.config
    versions = (f"kvpress {importlib.metadata.version('kvpress')}, "
                f"transformers {transformers.__version__}, torch {torch.__version__}")
    for name, press, settings in cases(L):
        kept = run_case(model, ids, press)
        path = os.path.join(outdir, name + ".txt")
        with open(path, "w") as f:
            f.write(f"# kvpress keep-sets, generated by tools/kvpress/golden.py ({versions}); "
                    "do not edit\n")
            f.write(f"# kvpress: {press!r}\n")
            f.write("# line: layer head n_kept hex-mask (bit j of nibble j/4 = position j kept)\n")
            f.write("adakv " + " ".join(f"{k}={v}" for k, v in settings.items()) + "\n")
            f.write(f"shape {cfg.num_hidden_layers} {cfg.num_key_value_heads} {L}\n")
            counts = []
            for layer in range(cfg.num_hidden_layers):
                for h in range(cfg.num_key_value_heads):
                    pos = kept[layer][h]
                    counts.append(len(pos))
                    f.write(f"{layer} {h} {len(pos)} {hexmask(pos, L)}\n")
        print(f"{name}: kept per head min {min(counts)} max {max(counts)} "
              f"mean {sum(counts) / len(counts):.1f} of {L} -> {path}", flush=True)


if __name__ == "__main__":
    main()
