#!/usr/bin/env python3
"""Makes the tokenizer golden file from llama.cpp (through the PyPI package llama-cpp-python).

Usage: tools/make-golden-tokens.py MODEL.gguf CORPUS.txt OUT.txt
       tools/make-golden-tokens.py --variants MODEL.gguf CORPUS.txt OUT.txt

For every corpus string (format: see the header of tests/data/tokenizer-corpus.txt) and every
(add_special, parse_special) setting it records llama.cpp's token ids, plus:
  - what llama_detokenize gives back for the (false, false) ids, where that differs from the
    input (invalid UTF-8 comes back as U+FFFD);
  - a 64-bit FNV-1a hash of llama_token_to_piece over each block of 1024 token ids, with and
    without `special`, so every piece of the vocab is checked without storing them all.

With --variants it writes vocab-only GGUF files derived from MODEL (a temporary directory) and
records llama.cpp's ids for them, so the other tokenizer paths are checked on the same corpus:
  - the model's own vocab and merges under the pre-tokenizers llama3, qwen2, gpt-2 and none
    (llama.cpp's "default"), with add_special = parse_special = true;
  - a synthetic SentencePiece ("llama") vocab: <unk> <s> </s>, the 256 <0xNN> byte tokens,
    control tokens [INST] [/INST], then the model's normal tokens 17.. as raw text (skipped
    when not valid UTF-8 or already present) with spaces written as U+2581 and score -id; with
    (add_special, parse_special) = (1, 1) and (0, 0).
tests/test_tokenizer.c rebuilds the same files with tests/gguf-writer.h from the model.
  V <variant> <index> <add_special> <parse_special> <n_bytes> : <id> <id> ...

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


def write_vocab_gguf(path, model_reader, pre, spm_vocab=None):
    import gguf

    def val(k):
        return model_reader.fields[k].contents()

    w = gguf.GGUFWriter(path, "llama")
    # llama.cpp reads the architecture's hyper-parameters even with vocab_only.
    for k in ("llama.context_length", "llama.embedding_length", "llama.block_count",
              "llama.feed_forward_length", "llama.attention.head_count",
              "llama.attention.head_count_kv", "llama.rope.dimension_count"):
        w.add_uint32(k, val(k))
    w.add_float32("llama.attention.layer_norm_rms_epsilon",
                  val("llama.attention.layer_norm_rms_epsilon"))
    if spm_vocab is None:
        w.add_tokenizer_model("gpt2")
        if pre is not None:
            w.add_tokenizer_pre(pre)
        w.add_token_list(val("tokenizer.ggml.tokens"))
        w.add_token_types(val("tokenizer.ggml.token_type"))
        w.add_token_merges(val("tokenizer.ggml.merges"))
        w.add_bos_token_id(1)
        w.add_eos_token_id(2)
    else:
        tokens, types, scores = spm_vocab
        w.add_tokenizer_model("llama")
        w.add_token_list(tokens)
        w.add_token_types(types)
        w.add_token_scores(scores)
        w.add_bos_token_id(1)
        w.add_eos_token_id(2)
        w.add_unk_token_id(0)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def synthetic_spm_vocab(vocab, n_vocab):
    tokens = [b"<unk>", b"<s>", b"</s>"] + [b"<0x%02X>" % b for b in range(256)]
    tokens += [b"[INST]", b"[/INST]"]
    types = [2, 3, 3] + [6] * 256 + [3, 3]
    scores = [0.0] * len(tokens)
    seen = set(tokens)
    for tok in range(17, n_vocab):
        p = piece(vocab, tok, False)
        try:
            p.decode("utf-8")
        except UnicodeDecodeError:
            continue
        t = p.replace(b" ", "\u2581".encode())
        if not t or t in seen:
            continue
        seen.add(t)
        tokens.append(t)
        types.append(1)
        scores.append(-float(tok))
    return [t.decode("utf-8") for t in tokens], types, scores


def variants(model, corpus, out):
    import os
    import tempfile

    import gguf

    reader = gguf.GGUFReader(model)
    base = llama_cpp.Llama(model_path=model, vocab_only=True, verbose=False)
    strings = read_corpus(corpus)
    lines = [f"# llama.cpp token ids for {corpus.split('/')[-1]} on vocab variants of "
             f"{model.split('/')[-1]}, made by tools/make-golden-tokens.py --variants",
             f"# with llama-cpp-python {llama_cpp.__version__}"]
    spm = synthetic_spm_vocab(base._model.vocab, base.n_vocab())
    lines.append(f"# spm vocab: {len(spm[0])} tokens")
    with tempfile.TemporaryDirectory() as tmp:
        for name, pre, settings in (("llama3", "llama3", ((1, 1),)), ("qwen2", "qwen2", ((1, 1),)),
                                    ("gpt-2", "gpt-2", ((1, 1),)), ("default", None, ((1, 1),)),
                                    ("spm", None, ((1, 1), (0, 0)))):
            path = os.path.join(tmp, name + ".gguf")
            write_vocab_gguf(path, reader, pre, spm if name == "spm" else None)
            llm = llama_cpp.Llama(model_path=path, vocab_only=True, verbose=False)
            for i, s in enumerate(strings):
                for add_special, parse_special in settings:
                    ids = llm.tokenize(s, add_bos=bool(add_special), special=bool(parse_special))
                    lines.append(f"V {name} {i} {add_special} {parse_special} {len(s)} : " +
                                 " ".join(map(str, ids)))
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"{out}: {len(strings)} strings x 5 variants")


def main():
    if sys.argv[1] == "--variants":
        variants(*sys.argv[2:5])
        return
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
