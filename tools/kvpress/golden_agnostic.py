#!/usr/bin/env python3
"""Writes kvpress's keep-sets for the question-agnostic presses (tests/test_kvpress_agnostic.c,
docs/presses.md): ExpectedAttentionPress and KVzipPress on the default model, dequantized from
its GGUF file by transformers, over tests/data/kvpress/tokens.txt (adakv's own token ids).

ExpectedAttentionPress runs as it is (a ScorerPress: per-head top int(L * (1 - r)) rows, its
sinks padded with max + 1); adakv matches its statistics with --window L - n_sink (kvpress takes
the mean and covariance of every query after the sinks).

KVzipPress has no per-head uniform mode (it selects across layers, or across a layer's heads
with layerwise=True), so its scores are captured (score_val, the max attention each context row
receives during the reconstruction, sinks set to max + 1) and each head's top
floor(L * (1 - r)) rows are written: kvpress's scores under adakv's uniform selection. The
model's chat template is left out (prefix_text "" and suffix "\\n", kvpress's path for a model
without one), so the whole prompt is the context; the reconstruction ids kvpress fed are written
beside the keep-sets so adakv prefills exactly the same sequence.

usage: python golden_agnostic.py MODEL.gguf TOKENS.txt OUTDIR
"""
import importlib.metadata
import math
import os
import sys

import numpy as np
import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer, DynamicCache

import kvpress
import kvpress.presses.kvzip_press as kvzip_mod
from kvpress import ExpectedAttentionPress, KVzipPress

N_SINK = 4


def adakv_budget(L, r):
    return max(1, int(math.floor(np.float32(L) * (np.float32(1.0) - np.float32(r)))))


def hexmask(pos, L):
    nib = [0] * ((L + 3) // 4)
    for p in pos:
        nib[p // 4] |= 1 << (p % 4)
    return "".join("0123456789abcdef"[x] for x in nib)


def write(path, header, settings, kept, n_layer, n_kv, L, extra=None):
    with open(path, "w") as f:
        for h in header:
            f.write(f"# {h}\n")
        f.write("# line: layer head n_kept hex-mask (bit j of nibble j/4 = position j kept)\n")
        f.write("adakv " + " ".join(f"{k}={v}" for k, v in settings.items()) + "\n")
        if extra:
            f.write(extra + "\n")
        f.write(f"shape {n_layer} {n_kv} {L}\n")
        for layer in range(n_layer):
            for h in range(n_kv):
                pos = kept[layer][h]
                f.write(f"{layer} {h} {len(pos)} {hexmask(pos, L)}\n")


def expected_case(model, ids, r):
    press = ExpectedAttentionPress(compression_ratio=r)
    kept = {}
    inner = press.compress

    def capture(module, hidden_states, keys, values, attentions, kwargs):
        k2, v2 = inner(module, hidden_states, keys, values, attentions, kwargs)
        kept[module.layer_idx] = []
        for h in range(keys.shape[1]):
            eq = (k2[0, h][:, None, :] == keys[0, h][None, :, :]).all(-1)
            assert (eq.sum(1) == 1).all()
            kept[module.layer_idx].append(sorted(eq.float().argmax(1).tolist()))
        return k2, v2

    press.compress = capture
    with torch.no_grad(), press(model):
        model(torch.tensor([ids]), past_key_values=DynamicCache(), use_cache=True)
    return press, kept


class NoTemplate:
    """kvpress's KVzip loads a tokenizer by the model's name; this one has no chat template."""

    def __init__(self, tok):
        self.tok = tok
        self.chat_template = None

    def encode(self, text, **kw):
        return self.tok.encode(text, **kw)


def kvzip_case(model, tok, ids, ratios):
    press = KVzipPress(compression_ratio=0.5)
    kvzip_mod.AutoTokenizer = type("T", (), {"from_pretrained": staticmethod(
        lambda *a, **k: NoTemplate(tok))})
    got = {}
    post = press.compress_post
    prep = press.prepare

    def capture_post(m):
        got["scores"] = press.score_val.clone().float()  # [layer][1][kv head][L]
        post(m)

    def capture_prepare(m, t):
        pairs = prep(m, t)
        got["rec"] = [x for _, rec in pairs for x in rec[0].tolist()]
        assert len(pairs) == 1, "one reconstruction chunk expected at this length"
        return pairs

    press.compress_post = capture_post
    press.prepare = capture_prepare
    with torch.no_grad(), press(model):
        model(input_ids=torch.tensor([ids]), past_key_values=DynamicCache(), use_cache=True)
    s = got["scores"][:, 0]  # sinks already at max + 1
    out = {}
    for r in ratios:
        b = adakv_budget(len(ids), r)
        kept = {l: [sorted(torch.topk(s[l, h], b).indices.tolist()) for h in range(s.shape[1])]
                for l in range(s.shape[0])}
        out[r] = kept
    return press, got["rec"], out


def main():
    model_path, tokens_path, outdir = sys.argv[1:4]
    ids = [int(x) for x in open(tokens_path).read().split()]
    L = len(ids)
    torch.manual_seed(0)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    d, f = os.path.dirname(os.path.abspath(model_path)), os.path.basename(model_path)
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32)
    model.eval()
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    cfg = model.config
    versions = (f"kvpress {importlib.metadata.version('kvpress')}, "
                f"transformers {transformers.__version__}, torch {torch.__version__}")
    for r in (0.5, 0.8):
        tag = f"{int(round(r * 100)):02d}"
        press, kept = expected_case(model, ids, r)
        write(os.path.join(outdir, f"expected-{tag}.txt"),
              [f"kvpress keep-sets, generated by tools/kvpress/golden_agnostic.py ({versions}); "
               "do not edit", f"kvpress: {press!r}"],
              {"press": "expected", "kv-ratio": f"{r}", "window": str(L - N_SINK)},
              kept, cfg.num_hidden_layers, cfg.num_key_value_heads, L)
        print(f"expected-{tag}: written", flush=True)
    press, rec, kept = kvzip_case(model, tok, ids, (0.5, 0.8))
    for r, k in kept.items():
        tag = f"{int(round(r * 100)):02d}"
        write(os.path.join(outdir, f"kvzip-{tag}.txt"),
              [f"kvpress KVzip scores (score_val) under adakv's uniform per-head top-k, "
               f"generated by tools/kvpress/golden_agnostic.py ({versions}); do not edit",
               f"kvpress: {press!r}"],
              {"press": "kvzip", "kv-ratio": f"{r}"}, k, cfg.num_hidden_layers,
              cfg.num_key_value_heads, L, extra="rec " + " ".join(map(str, rec)))
        print(f"kvzip-{tag}: written ({len(rec)} reconstruction ids)", flush=True)


if __name__ == "__main__":
    main()
