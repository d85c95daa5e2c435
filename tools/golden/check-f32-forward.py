#!/usr/bin/env python3
"""How close can an engine that does the maths exactly come to the golden logits?

What: an independent, plain numpy forward pass of a llama-architecture GGUF model (weights
dequantized with gguf.quants, the gguf package's own reference quant code; RMSNorm, RoPE with
adjacent pairs as llama.cpp's LLAMA_ROPE_TYPE_NORM, grouped-query causal attention, SwiGLU, tied
or separate output head), teacher-forced over the golden file's tokens, then KL(golden || this)
over the top-k plus tail and top-1 agreement. Two arithmetic modes:
  exact     f32 everywhere (what an engine with an f32 reference path computes);
  llamacpp  rounds where llama.cpp's CPU path rounds with flash attention off: activations
            quantized to 8-bit blocks of 32 before every quantized matmul (Q8_1 for Q4_1/Q5_1
            weights, with its block sum d*sum(q) stored as f16 and used for the weights'
            minimum; Q8_0 for Q8_0), K and V stored as f16, Q rounded to f16 before Q.K, and the
            softmax probabilities rounded to f16 before P.V; RMSNorm's mean of squares and RoPE's
            angles (theta *= theta_scale in f32) computed as ggml does. Checked op by op (once, by
            hand) against tensors dumped from llama.cpp through ggml's eval callback on layer 0:
            each op agrees to f32 rounding given llama.cpp's own inputs.
This tells the engine which roundings matter for the foundation issue's bounds (mean KL <= 0.01,
top-1 >= 99%), and checks the golden file against an implementation that shares no code with
llama.cpp.

Rerun: python3 tools/golden/check-f32-forward.py [--mode exact|llamacpp|both] [--n-pos N]
(a few minutes for both modes over 2,048 positions on 2 cores, about 2 GB of memory).
Writes nothing.
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_reference as ref  # noqa: E402


def f16(x):
    return x.astype(np.float16).astype(np.float32)


def q8_1_sum_fix(x, block=32):
    """Q8_1 stores s = f16(d * sum(q)) with the unrounded f32 d, and the Q4_1/Q5_1 dot uses it for
    the weights' minimum m: y = sum_b d_w d_x isum_b + m_b s_b. Dequantizing the activations
    gives m_b f16(d) sum(q) instead; this returns per block s_b - f16(d) sum(q_b)."""
    n, k = x.shape
    xb = x.reshape(n, k // block, block).astype(np.float32)
    amax = np.abs(xb).max(axis=2)
    d = (amax / np.float32(127)).astype(np.float32)
    inv = np.where(amax > 0, np.float32(127) / np.where(amax > 0, amax, 1), 0).astype(np.float32)
    qsum = np.rint(xb * inv[:, :, None]).sum(axis=2).astype(np.float32)
    return f16(d * qsum) - f16(d) * qsum


def quantize_act(x, block=32):
    """Round activations the way llama.cpp's quantize_row_q8_0/q8_1 do: per block of 32 a scale
    d = amax/127 (stored as f16), values round(x/d) in int8, dequantized back to f32."""
    n, k = x.shape
    xb = x.reshape(n, k // block, block)
    amax = np.abs(xb).max(axis=2, keepdims=True)
    d = amax / 127.0
    inv = np.where(d > 0, 1.0 / np.where(d > 0, d, 1), 0.0)
    q = np.rint(xb * inv.astype(np.float32))
    return (q * f16(d)).reshape(n, k).astype(np.float32)


class Model:
    def __init__(self, path):
        import gguf

        r = gguf.GGUFReader(path)
        meta = {k: f.contents() for k, f in r.fields.items() if k.startswith("llama.")}
        if r.fields["general.architecture"].contents() != "llama":
            sys.exit(f"{path}: only the llama architecture is handled here")
        self.n_layer = meta["llama.block_count"]
        self.n_head = meta["llama.attention.head_count"]
        self.n_head_kv = meta["llama.attention.head_count_kv"]
        self.n_embd = meta["llama.embedding_length"]
        self.head_dim = self.n_embd // self.n_head
        self.eps = np.float32(meta["llama.attention.layer_norm_rms_epsilon"])
        self.theta = meta.get("llama.rope.freq_base", 10000.0)
        self.w, self.wtype, self.wmin = {}, {}, {}
        for t in r.tensors:
            self.w[t.name] = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
            self.wtype[t.name] = t.tensor_type.name
            if t.tensor_type.name in ("Q4_1", "Q5_1"):  # per-block minimum m, bytes 2..3
                bsz = 20 if t.tensor_type.name == "Q4_1" else 24
                raw = np.frombuffer(t.data.tobytes(), dtype=np.uint8).reshape(-1, bsz)
                rows = int(np.prod(t.shape[1:]))
                self.wmin[t.name] = raw[:, 2:4].copy().view(np.float16).astype(
                    np.float32).reshape(rows, -1)
        if "output.weight" not in self.w:
            self.w["output.weight"] = self.w["token_embd.weight"]
            self.wtype["output.weight"] = self.wtype["token_embd.weight"]


def rms_norm(x, w, eps, emulate=False):
    if emulate:  # ggml: f32 squares summed in f64, mean and scale in f32, then x * scale * w
        mean = (x * x).astype(np.float64).sum(axis=1, keepdims=True) / x.shape[1]
        scale = np.float32(1) / np.sqrt(mean.astype(np.float32) + np.float32(eps))
        return (x * scale) * w
    return (x / np.sqrt((x.astype(np.float64) ** 2).mean(axis=1, keepdims=True) + eps)).astype(
        np.float32) * w


def rope(x, pos, theta, emulate=False):
    """x: (n_tok, n_heads, head_dim); rotates adjacent pairs (2i, 2i+1) by pos * theta^(-2i/d)."""
    d = x.shape[2]
    if emulate:  # ggml_rope_cache_init: theta = pos, then theta *= theta_scale per pair, in f32
        ts = np.float32(np.float32(theta) ** np.float32(-2.0 / d))
        ang = np.empty((len(pos), d // 2), dtype=np.float32)
        ang[:, 0] = pos.astype(np.float32)
        for i in range(1, d // 2):
            ang[:, i] = ang[:, i - 1] * ts
    else:
        inv_freq = theta ** (-np.arange(0, d, 2, dtype=np.float64) / d)
        ang = pos[:, None].astype(np.float64) * inv_freq[None, :]
    cos = np.cos(ang).astype(np.float32)[:, None, :]
    sin = np.sin(ang).astype(np.float32)[:, None, :]
    x0, x1 = x[..., 0::2], x[..., 1::2]
    out = np.empty_like(x)
    out[..., 0::2] = x0 * cos - x1 * sin
    out[..., 1::2] = x0 * sin + x1 * cos
    return out


def forward(m, tokens, mode):
    emulate = mode == "llamacpp"
    n = len(tokens)
    pos = np.arange(n)

    def matmul(x, name):
        if not emulate or m.wtype[name] in ("F32", "F16"):
            return x @ m.w[name].T
        y = quantize_act(x) @ m.w[name].T
        if name in m.wmin:
            y += q8_1_sum_fix(x) @ m.wmin[name].T
        return y

    x = m.w["token_embd.weight"][np.asarray(tokens)]
    mask = np.triu(np.full((n, n), -np.inf, dtype=np.float32), 1)
    group = m.n_head // m.n_head_kv
    for layer in range(m.n_layer):
        p = f"blk.{layer}."
        h = rms_norm(x, m.w[p + "attn_norm.weight"], m.eps, emulate)
        q = matmul(h, p + "attn_q.weight").reshape(n, m.n_head, m.head_dim)
        k = matmul(h, p + "attn_k.weight").reshape(n, m.n_head_kv, m.head_dim)
        v = matmul(h, p + "attn_v.weight").reshape(n, m.n_head_kv, m.head_dim)
        q, k = rope(q, pos, m.theta, emulate), rope(k, pos, m.theta, emulate)
        if emulate:
            q, k, v = f16(q), f16(k), f16(v)
        out = np.empty((n, m.n_head, m.head_dim), dtype=np.float32)
        for hq in range(m.n_head):
            hk = hq // group
            s = (q[:, hq] @ k[:, hk].T) / np.float32(np.sqrt(m.head_dim)) + mask
            s = np.exp(s - s.max(axis=1, keepdims=True))
            s /= s.sum(axis=1, keepdims=True)
            if emulate:
                s = f16(s)
            out[:, hq] = s @ v[:, hk]
        x = x + matmul(out.reshape(n, m.n_embd), p + "attn_output.weight")
        h = rms_norm(x, m.w[p + "ffn_norm.weight"], m.eps, emulate)
        g = matmul(h, p + "ffn_gate.weight")
        u = matmul(h, p + "ffn_up.weight")
        x = x + matmul((g / (1 + np.exp(-g))) * u, p + "ffn_down.weight")
    h = rms_norm(x, m.w["output_norm.weight"], m.eps, emulate)
    return matmul(h, "output.weight")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--file", default=ref.GOLDEN_LOGITS)
    ap.add_argument("--model")
    ap.add_argument("--mode", choices=["exact", "llamacpp", "both"], default="both")
    ap.add_argument("--n-pos", type=int, default=0, help="first N positions only (0: all)")
    args = ap.parse_args()

    golden = ref.read_logits(args.file)
    if args.n_pos:
        for key in ("tokens", "lse", "ids", "logits"):
            golden[key] = golden[key][: args.n_pos]
    m = Model(ref.model_path(args.model))
    for mode in (["exact", "llamacpp"] if args.mode == "both" else [args.mode]):
        rows = forward(m, [int(t) for t in golden["tokens"]], mode)
        kl, agree = ref.kl_top_k(golden, rows)
        print(
            f"{mode:9s} mean KL {kl.mean():.3e}  max KL {kl.max():.3e}  p99 KL "
            f"{np.quantile(kl, 0.99):.3e}  top-1 agreement {100 * agree.mean():.2f}% "
            f"({int(agree.sum())}/{len(agree)})"
        )


if __name__ == "__main__":
    main()
