#!/usr/bin/env python3
"""Makes the tokenizer golden file from llama.cpp (through the PyPI package llama-cpp-python).

Usage: tools/make-golden-tokens.py MODEL.gguf CORPUS.txt OUT.txt

For every corpus string (format: see the header of tests/data/tokenizer-corpus.txt) and every
(add_special, parse_special) setting it records llama.cpp's token ids, plus:
  - what llama_detokenize gives back for the (false, false) ids, where that differs from the
    input (invalid UTF-8 comes back as U+FFFD);
  - a 64-bit FNV-1a hash of llama_token_to_piece over each block of 1024 token ids, with and
    without `special`, so every piece of the vocab is checked without storing them all.

Output lines (tests/test_tokenizer.c reads them):
  T <index> <add_special> <parse_special> <n_bytes> : <id> <id> ...
  D <index> <hex of the detokenized bytes>
  P <special> <first id> <n ids> <hash as 16 hex digits>
"""
import ctypes
import sys

import llama_cpp


def unescape(line):
    out = bytearray()
    i = 0
    b = line.encode("utf-8")
    while i < len(b):
        c = b[i]
        if c == 0x5C and i + 1 < len(b):
            n = b[i + 1]
            if n == ord("n"):
                out.append(10); i += 2; continue
            if n == ord("t"):
                out.append(9); i += 2; continue
            if n == ord("r"):
                out.append(13); i += 2; continue
            if n == 0x5C:
                out.append(0x5C); i += 2; continue
            if n == ord("x") and i + 3 < len(b) + 0:
                out.append(int(b[i + 2:i + 4], 16)); i += 4; continue
            raise ValueError(f"bad escape in corpus line: {line!r}")
        out.append(c)
        i += 1
    return bytes(out)


def read_corpus(path):
    strings = []
    with open(path, encoding="utf-8", newline="\n") as f:
        for line in f.read().split("\n")[:-1]:
            if line.startswith("#"):
                continue
            strings.append(unescape(line))
    return strings


def fnv1a(h, data):
    for byte in data:
        h ^= byte
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def piece(vocab, tok, special):
    size = 64
    while True:
        buf = ctypes.create_string_buffer(size)
        n = llama_cpp.llama_token_to_piece(vocab, tok, buf, size, 0, special)
        if n >= 0:
            return buf.raw[:n]
        size = -n


def detokenize(vocab, ids):
    arr = (llama_cpp.llama_token * max(1, len(ids)))(*ids)
    size = 64 + 8 * len(ids)
    while True:
        buf = ctypes.create_string_buffer(size)
        n = llama_cpp.llama_detokenize(vocab, arr, len(ids), buf, size, False, False)
        if n >= 0:
            return buf.raw[:n]
        size = -n


def main():
    model, corpus, out = sys.argv[1:4]
    llm = llama_cpp.Llama(model_path=model, vocab_only=True, verbose=False)
    vocab = llm._model.vocab
    strings = read_corpus(corpus)
    lines = [f"# llama.cpp token ids for {corpus.split('/')[-1]}, made by tools/make-golden-tokens.py",
             f"# with llama-cpp-python {llama_cpp.__version__} on {model.split('/')[-1]}"]
    for i, s in enumerate(strings):
        for add_special in (0, 1):
            for parse_special in (0, 1):
                ids = llm.tokenize(s, add_bos=bool(add_special), special=bool(parse_special))
                lines.append(f"T {i} {add_special} {parse_special} {len(s)} : " +
                             " ".join(map(str, ids)))
        ids = llm.tokenize(s, add_bos=False, special=False)
        text = detokenize(vocab, ids)
        if text != s:
            lines.append(f"D {i} {text.hex()}")
    n_vocab = llm.n_vocab()
    for special in (0, 1):
        for first in range(0, n_vocab, 1024):
            n = min(1024, n_vocab - first)
            h = 0xCBF29CE484222325
            for tok in range(first, first + n):
                p = piece(vocab, tok, bool(special))
                h = fnv1a(h, len(p).to_bytes(4, "little"))
                h = fnv1a(h, p)
            lines.append(f"P {special} {first} {n} {h:016x}")
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"{out}: {len(strings)} strings, {n_vocab} pieces")


if __name__ == "__main__":
    main()
