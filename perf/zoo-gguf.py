#!/usr/bin/env python3
"""perf/zoo-gguf.py: a random-weight F16 GGUF with the tensor names, shapes and metadata of a real
model, for speed benchmarks (speed depends on tensor types and shapes, not on weight values).

usage: perf/zoo-gguf.py --shape SHAPE [-o OUT.gguf] [--seed N] [--layers N] [--list]
  SHAPE: llama-3.2-1b | llama-3.2-3b | llama-3.1-8b | qwen2.5-7b
  default OUT: perf/zoo/SHAPE.F16.gguf
  --layers N: only the first N blocks (a quick loader check; not a benchmark shape)
  --list: each shape's architecture and F16 file bytes (tensor data)

Needs the PyPI packages gguf and numpy (perf/zoo.sh runs this in the venv perf/zoo/.venv).

What is written, as llama.cpp's convert_hf_to_gguf.py writes the real model:
- the hyperparameters of the published config.json (layers, widths, heads, head_dim, vocab,
  context, RMS epsilon, rope base), general.file_type 1 (F16);
- 2-D weights in F16, drawn from N(0, 0.02^2); norms in F32 = 1.0; Qwen2's Q/K/V biases in F32
  from N(0, 0.02^2); tied models (Llama 3.2) have no output.weight;
- Llama 3.1/3.2's rope scaling as rope_freqs.weight (F32, head_dim/2 factors) computed from
  factor / low_freq_factor / high_freq_factor / original_max_position_embeddings with the same
  formula as the converter;
- a synthetic GPT-2-style byte-level BPE tokenizer of the exact vocab size: the 256 byte tokens
  of GPT-2's byte-to-unicode map, then 2- and 3-character tokens over printable ASCII and 'Ġ'
  (space) with one consistent merge per token (every merge joins two existing tokens, shorter
  ones ranked first), then the model's real special tokens at their real ids (Llama 3:
  <|begin_of_text|> 128000 ... <|reserved_special_token_247|> 128255; Qwen2.5: <|endoftext|>
  151643 ... <|file_sep|> 151664, then [PAD151665..152063] as the converter pads). Text
  tokenizes into sensible-looking pieces; the real vocab's texts are not reproduced.

Weight values: one pool of 16 M values from N(0, 0.02^2) is drawn per run (--seed); every
tensor is written in chunks of 4 M values, each copied from a random offset in the pool (seeded
by the tensor name), so an 8B file costs a copy per value rather than a normal draw (the speed
of llama.cpp and adakv, and of llama-quantize, does not depend on the values). Tensor data is
streamed tensor by tensor (peak RSS ~0.2 GB for any shape): gguf's GGUFWriter writes the
header, metadata and tensor table (add_tensor_info), then this script writes each tensor's
bytes at the aligned offsets that table announced, padded as GGUFWriter.write_tensor_data does.
"""
import argparse
import math
import os
import sys
import time
import zlib

import numpy as np

try:
    import gguf
except ImportError:
    sys.exit("zoo-gguf.py: the 'gguf' package is missing (perf/zoo.sh sets up perf/zoo/.venv)")

LLAMA3_SPECIAL = {
    128000: "<|begin_of_text|>",
    128001: "<|end_of_text|>",
    128002: "<|reserved_special_token_0|>",
    128003: "<|reserved_special_token_1|>",
    128004: "<|finetune_right_pad_id|>",
    128005: "<|reserved_special_token_2|>",
    128006: "<|start_header_id|>",
    128007: "<|end_header_id|>",
    128008: "<|eom_id|>",
    128009: "<|eot_id|>",
    128010: "<|python_tag|>",
}
QWEN2_SPECIAL = [  # 151643.. in order; tool_call tags are added but not special (user-defined)
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
    "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>", "<tool_call>",
    "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>",
    "<|repo_name|>", "<|file_sep|>",
]

LLAMA3_ROPE = dict(low_freq_factor=1.0, high_freq_factor=4.0, original_ctx=8192)
SHAPES = {
    "llama-3.2-1b": dict(arch="llama", name="Llama 3.2 1B", size_label="1B", n_layer=16,
                         n_embd=2048, n_head=32, n_head_kv=8, head_dim=64, n_ff=8192,
                         n_vocab=128256, tied=True, rope_base=500000.0, n_ctx=131072,
                         norm_eps=1e-5, rope_llama3=dict(factor=32.0, **LLAMA3_ROPE)),
    "llama-3.2-3b": dict(arch="llama", name="Llama 3.2 3B", size_label="3B", n_layer=28,
                         n_embd=3072, n_head=24, n_head_kv=8, head_dim=128, n_ff=8192,
                         n_vocab=128256, tied=True, rope_base=500000.0, n_ctx=131072,
                         norm_eps=1e-5, rope_llama3=dict(factor=32.0, **LLAMA3_ROPE)),
    "llama-3.1-8b": dict(arch="llama", name="Llama 3.1 8B", size_label="8B", n_layer=32,
                         n_embd=4096, n_head=32, n_head_kv=8, head_dim=128, n_ff=14336,
                         n_vocab=128256, tied=False, rope_base=500000.0, n_ctx=131072,
                         norm_eps=1e-5, rope_llama3=dict(factor=8.0, **LLAMA3_ROPE)),
    "qwen2.5-7b": dict(arch="qwen2", name="Qwen2.5 7B", size_label="7.6B", n_layer=28,
                       n_embd=3584, n_head=28, n_head_kv=4, head_dim=128, n_ff=18944,
                       n_vocab=152064, tied=False, rope_base=1000000.0, n_ctx=32768,
                       norm_eps=1e-6, rope_llama3=None),
}

POOL = 1 << 24  # random values drawn once per run
CHUNK = 1 << 22  # values written at a time, each from a random offset in the pool


def bytes_to_unicode():
    """GPT-2's byte -> printable unicode character map (the byte-level BPE alphabet)."""
    bs = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) +
          list(range(ord("®"), ord("ÿ") + 1)))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def make_vocab(cfg):
    """(tokens, token types, merges, special ids) of the synthetic vocab, exactly n_vocab long."""
    n_vocab = cfg["n_vocab"]
    if cfg["arch"] == "llama":
        n_normal = 128000
        special = dict(LLAMA3_SPECIAL)
        for i in range(128011, n_vocab):
            special[i] = f"<|reserved_special_token_{i - 128011 + 3}|>"
        specials = [(i, special[i], gguf.TokenType.CONTROL) for i in range(n_normal, n_vocab)]
        ids = dict(bos=128000, eos=128009, add_bos=True, pad=None)
    else:
        n_normal = 151643
        specials = []
        for k, text in enumerate(QWEN2_SPECIAL):
            ty = gguf.TokenType.USER_DEFINED if "tool_call" in text else gguf.TokenType.CONTROL
            specials.append((n_normal + k, text, ty))
        for i in range(n_normal + len(QWEN2_SPECIAL), n_vocab):
            specials.append((i, f"[PAD{i}]", gguf.TokenType.UNUSED))
        ids = dict(bos=151643, eos=151645, add_bos=False, pad=151643)

    byte_chars = [bytes_to_unicode()[b] for b in range(256)]
    tokens = list(byte_chars)
    merges = []
    seen = set(tokens)
    # alphabet of the multi-character tokens: space first, then letters, digits, punctuation
    alpha = (["Ġ"] + [chr(c) for c in range(ord("a"), ord("z") + 1)] +
             [chr(c) for c in range(ord("A"), ord("Z") + 1)] +
             [chr(c) for c in range(ord("0"), ord("9") + 1)])
    alpha += [chr(c) for c in range(33, 127) if chr(c) not in alpha]
    level2 = []

    def add(left, right):
        text = left + right
        if len(tokens) >= n_normal or text in seen:
            return
        seen.add(text)
        tokens.append(text)
        merges.append(f"{left} {right}")
        return text

    for a in alpha:
        for b in alpha:
            t = add(a, b)
            if t:
                level2.append(t)
    for t in level2:
        for c in alpha:
            add(t, c)
            if len(tokens) >= n_normal:
                break
        if len(tokens) >= n_normal:
            break
    assert len(tokens) == n_normal, (len(tokens), n_normal)
    types = [gguf.TokenType.NORMAL] * n_normal
    for i, text, ty in specials:
        assert i == len(tokens)
        tokens.append(text)
        types.append(ty)
    assert len(tokens) == n_vocab and len(set(tokens)) == n_vocab
    return tokens, types, merges, ids


def llama3_rope_factors(cfg):
    """rope_freqs.weight as convert_hf_to_gguf.py's LlamaModel computes it for rope_type llama3."""
    r, dim, base = cfg["rope_llama3"], cfg["head_dim"], cfg["rope_base"]
    freqs = 1.0 / (np.float32(base) ** (np.arange(0, dim, 2, dtype=np.float32) / np.float32(dim)))
    low_wavelen = r["original_ctx"] / r["low_freq_factor"]
    high_wavelen = r["original_ctx"] / r["high_freq_factor"]
    out = []
    for freq in freqs:
        wavelen = 2 * math.pi / float(freq)
        if wavelen < high_wavelen:
            out.append(1.0)
        elif wavelen > low_wavelen:
            out.append(r["factor"])
        else:
            smooth = ((r["original_ctx"] / wavelen - r["low_freq_factor"]) /
                      (r["high_freq_factor"] - r["low_freq_factor"]))
            out.append(1.0 / ((1 - smooth) / r["factor"] + smooth))
    return np.array(out, dtype=np.float32)


def tensor_plan(cfg):
    """[(name, ggml ne (innermost first), numpy dtype, kind)] in file order."""
    d, ff, hd = cfg["n_embd"], cfg["n_ff"], cfg["head_dim"]
    q, kv = cfg["n_head"] * hd, cfg["n_head_kv"] * hd
    plan = []
    if cfg["rope_llama3"]:
        plan.append(("rope_freqs.weight", (hd // 2,), np.float32, "rope"))
    plan.append(("token_embd.weight", (d, cfg["n_vocab"]), np.float16, "weight"))
    for i in range(cfg["n_layer"]):
        b = f"blk.{i}."
        plan.append((b + "attn_norm.weight", (d,), np.float32, "norm"))
        plan.append((b + "attn_q.weight", (d, q), np.float16, "weight"))
        plan.append((b + "attn_k.weight", (d, kv), np.float16, "weight"))
        plan.append((b + "attn_v.weight", (d, kv), np.float16, "weight"))
        if cfg["arch"] == "qwen2":
            plan.append((b + "attn_q.bias", (q,), np.float32, "bias"))
            plan.append((b + "attn_k.bias", (kv,), np.float32, "bias"))
            plan.append((b + "attn_v.bias", (kv,), np.float32, "bias"))
        plan.append((b + "attn_output.weight", (q, d), np.float16, "weight"))
        plan.append((b + "ffn_norm.weight", (d,), np.float32, "norm"))
        plan.append((b + "ffn_gate.weight", (d, ff), np.float16, "weight"))
        plan.append((b + "ffn_up.weight", (d, ff), np.float16, "weight"))
        plan.append((b + "ffn_down.weight", (ff, d), np.float16, "weight"))
    plan.append(("output_norm.weight", (d,), np.float32, "norm"))
    if not cfg["tied"]:
        plan.append(("output.weight", (d, cfg["n_vocab"]), np.float16, "weight"))
    return plan


def add_metadata(w, cfg, shape):
    a = cfg["arch"]
    w.add_type("model")
    w.add_name(f"{cfg['name']} (adakv zoo: random weights)")
    w.add_size_label(cfg["size_label"])
    w.add_description(f"perf/zoo-gguf.py --shape {shape}: real shapes, random N(0, 0.02) weights")
    w.add_uint32(f"{a}.block_count", cfg["n_layer"])
    w.add_uint32(f"{a}.context_length", cfg["n_ctx"])
    w.add_uint32(f"{a}.embedding_length", cfg["n_embd"])
    w.add_uint32(f"{a}.feed_forward_length", cfg["n_ff"])
    w.add_uint32(f"{a}.attention.head_count", cfg["n_head"])
    w.add_uint32(f"{a}.attention.head_count_kv", cfg["n_head_kv"])
    w.add_float32(f"{a}.rope.freq_base", cfg["rope_base"])
    w.add_float32(f"{a}.attention.layer_norm_rms_epsilon", cfg["norm_eps"])
    if a == "llama":  # the converter writes these for llama, not for qwen2
        w.add_uint32(f"{a}.attention.key_length", cfg["head_dim"])
        w.add_uint32(f"{a}.attention.value_length", cfg["head_dim"])
        w.add_uint32(f"{a}.vocab_size", cfg["n_vocab"])
        w.add_uint32(f"{a}.rope.dimension_count", cfg["head_dim"])
    w.add_file_type(1)  # LLAMA_FTYPE_MOSTLY_F16
    tokens, types, merges, ids = make_vocab(cfg)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("llama-bpe" if a == "llama" else "qwen2")
    w.add_token_list(tokens)
    w.add_token_types([int(t) for t in types])
    w.add_token_merges(merges)
    w.add_bos_token_id(ids["bos"])
    w.add_eos_token_id(ids["eos"])
    if ids["pad"] is not None:
        w.add_pad_token_id(ids["pad"])
    w.add_add_bos_token(ids["add_bos"])
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    return len(tokens), len(merges)


def make_pools(seed):
    """POOL values from N(0, 0.02^2), as F16 and as F32."""
    x = np.random.default_rng(seed).standard_normal(POOL, dtype=np.float32)
    x *= 0.02
    return {np.dtype(np.float32): x, np.dtype(np.float16): x.astype(np.float16)}


def write_tensor(fout, name, ne, dtype, kind, cfg, pools, seed):
    n = math.prod(ne)
    if kind == "rope":
        fout.write(llama3_rope_factors(cfg).tobytes())
        return
    if kind == "norm":
        fout.write(np.ones(n, dtype=dtype).tobytes())
        return
    # chunks of the pool from random offsets: random normals at the cost of a copy
    pool = pools[np.dtype(dtype)]
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    done = 0
    while done < n:
        m = min(CHUNK, n - done)
        off = int(rng.integers(0, POOL - m + 1))
        pool[off:off + m].tofile(fout)
        done += m


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shape", choices=sorted(SHAPES))
    ap.add_argument("-o", "--out")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--layers", type=int, help="only the first N blocks (a quick loader check)")
    ap.add_argument("--list", action="store_true", help="print the shapes and their F16 sizes")
    args = ap.parse_args()
    if args.list:
        for s, cfg in SHAPES.items():
            nb = sum(math.prod(ne) * np.dtype(dt).itemsize for _, ne, dt, _ in tensor_plan(cfg))
            print(f"{s}\t{cfg['arch']}\t{nb}")
        return
    if not args.shape:
        ap.error("--shape is required")
    cfg = dict(SHAPES[args.shape])
    if args.layers:
        cfg["n_layer"] = min(args.layers, cfg["n_layer"])
    out = args.out or os.path.join(os.path.dirname(os.path.abspath(__file__)), "zoo",
                                   f"{args.shape}.F16.gguf")
    t0 = time.time()
    w = gguf.GGUFWriter(out, cfg["arch"])
    n_tok, n_merge = add_metadata(w, cfg, args.shape)
    plan = tensor_plan(cfg)
    for name, ne, dtype, _ in plan:
        nbytes = math.prod(ne) * np.dtype(dtype).itemsize
        w.add_tensor_info(name, tuple(reversed(ne)), np.dtype(dtype), nbytes)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    fout = w.fout[0]
    pools = make_pools(args.seed)
    # The data section: each tensor at the aligned offset write_ti_data_to_file announced, as
    # GGUFWriter.write_tensor_data lays it out, but written in chunks.
    for name, ne, dtype, kind in plan:
        w.write_padding(fout, fout.tell())
        start = fout.tell()
        write_tensor(fout, name, ne, dtype, kind, cfg, pools, args.seed)
        nbytes = fout.tell() - start
        assert nbytes == math.prod(ne) * np.dtype(dtype).itemsize, name
        w.write_padding(fout, nbytes)
    w.close()
    n_params = sum(math.prod(ne) for _, ne, _, kind in plan if kind != "rope")
    print(f"zoo-gguf: {out}: {args.shape} ({cfg['arch']}), {len(plan)} tensors, "
          f"{n_params / 1e9:.3f} B parameters, vocab {n_tok} ({n_merge} merges), "
          f"{os.path.getsize(out) / 1e9:.2f} GB in {time.time() - t0:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
