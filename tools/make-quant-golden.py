#!/usr/bin/env python3
"""Writes tests/data/quant-golden.bin: random blocks of every weight type adakv supports and
their values as dequantized by the reference implementation (the PyPI package `gguf`, whose
gguf.quants module mirrors ggml's dequantize_row_* in numpy float32 arithmetic).

tests/test_quant.c reads the file and asserts that adakv's scalar dequant_row reproduces every
value bit for bit: dequantization is a few exactly-specified f32 products and sums per value,
so the two implementations must agree exactly, signed zeros included.

Blocks: random bytes for the quants, f16 scales drawn over a wide exponent range, some blocks
produced by gguf.quants.quantize where the package has a quantizer, and extreme blocks (largest
f16 scale, all-15 nibbles, negative zero, subnormal scales).

File layout (little-endian): magic b"AKQG", u32 version 1, u32 n_records; then per record:
u32 ggml type id, u32 n_values, u32 n_bytes, n_bytes of blocks, n_values f32 values.
Usage: tools/make-quant-golden.py [out-path]   (default tests/data/quant-golden.bin)
"""
import struct
import sys
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import quants

SEED = 20261125
# (type, values per block, bytes per block, offsets of f16 scale fields inside a block)
TYPES = [
    (T.F16, 1, 2, []),
    (T.BF16, 1, 2, []),
    (T.Q4_0, 32, 18, [0]),
    (T.Q4_1, 32, 20, [0, 2]),
    (T.Q5_0, 32, 22, [0]),
    (T.Q5_1, 32, 24, [0, 2]),
    (T.Q8_0, 32, 34, [0]),
    (T.Q4_K, 256, 144, [0, 2]),
    (T.Q5_K, 256, 176, [0, 2]),
    (T.Q6_K, 256, 210, [208]),
]
EXTREME_F16 = [0x7BFF, 0xFBFF, 0x8000, 0x0000, 0x0001, 0x03FF, 0x0400, 0x3C00]


def random_f16(rng, n):
    """f16 bit patterns with sign and exponent spread from 2^-14 to 2^8 (finite)."""
    vals = rng.choice([-1.0, 1.0], n) * np.exp2(rng.uniform(-14, 8, n))
    return vals.astype(np.float16).view(np.uint16)


def make_blocks(rng, qtype, n_blocks, block_bytes, scale_offsets):
    raw = rng.integers(0, 256, size=(n_blocks, block_bytes), dtype=np.uint8)
    if qtype in (T.F16, T.BF16):
        # any finite pattern; NaN payload handling is not part of the contract
        vals = raw.view(np.uint16).reshape(-1).copy()
        exp_mask = 0x7C00 if qtype == T.F16 else 0x7F80
        nan_or_inf = (vals & exp_mask) == exp_mask
        vals[nan_or_inf] &= ~np.uint16(0x4000)
        vals[:len(EXTREME_F16)] = EXTREME_F16 if qtype == T.F16 else [
            0x7F7F, 0xFF7F, 0x8000, 0x0000, 0x0001, 0x007F, 0x0080, 0x3F80]
        return vals.view(np.uint8).reshape(n_blocks, block_bytes)
    for off in scale_offsets:
        raw[:, off:off + 2] = random_f16(rng, n_blocks).view(np.uint8).reshape(n_blocks, 2)
    # extremes in the first blocks: largest scale with all-ones quants, negative zero scale,
    # subnormal scales
    for b, h in enumerate(EXTREME_F16[:min(n_blocks, len(EXTREME_F16))]):
        for off in scale_offsets:
            raw[b, off:off + 2] = np.array([h], dtype=np.uint16).view(np.uint8)
    raw[0, :] = np.where(np.isin(np.arange(block_bytes), sum(([o, o + 1] for o in scale_offsets),
                                                             [])), raw[0, :], 0xFF)
    if qtype == T.Q6_K:
        raw[0, 192:208] = 0x7F  # keep int8 scales at +127 instead of -1
    return raw


def quantized_blocks(rng, qtype, n_values):
    """Blocks made by the package's own quantizer, where it has one."""
    x = (rng.standard_normal(n_values) * rng.uniform(0.01, 10)).astype(np.float32)
    try:
        q = quants.quantize(x.reshape(1, -1), qtype)
    except (NotImplementedError, quants.QuantError, ValueError):
        return None
    return np.ascontiguousarray(q).view(np.uint8).reshape(-1)


def main():
    out = Path(sys.argv[1] if len(sys.argv) > 1 else
               Path(__file__).resolve().parent.parent / "tests/data/quant-golden.bin")
    rng = np.random.default_rng(SEED)
    records = []
    for qtype, blck, nbytes, offs in TYPES:
        n_blocks = 512 if blck == 1 else (16 if blck == 32 else 4)
        blocks = make_blocks(rng, qtype, n_blocks, nbytes, offs).reshape(-1)
        extra = quantized_blocks(rng, qtype, n_blocks * blck)
        for data in (blocks, extra):
            if data is None:
                continue
            values = quants.dequantize(data, qtype).astype(np.float32).reshape(-1)
            assert values.size * nbytes == data.size * blck
            records.append((int(qtype), values.size, data.tobytes(), values.tobytes()))
    with open(out, "wb") as f:
        f.write(b"AKQG" + struct.pack("<II", 1, len(records)))
        for t, n, data, vals in records:
            f.write(struct.pack("<III", t, n, len(data)) + data + vals)
    print(f"{out}: {len(records)} records, {out.stat().st_size} bytes")


if __name__ == "__main__":
    main()
