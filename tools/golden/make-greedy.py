#!/usr/bin/env python3
"""Golden greedy continuations from the reference (llama.cpp through llama-cpp-python).

What: for every prompt in tests/data/prompts/*.txt, feeds the file's bytes exactly (no trailing
newline is added or removed; special-token text such as <|im_start|> IS parsed, as llama.cpp's
llama-completion does for prompts; BOS only if the model asks for it, which SmolLM2 does not),
then picks the arg-max token (temperature 0, ties to the lower id) up to 32 times, stopping
after an end-of-generation token (which is then the last id stored).

Writes, per prompt NAME: tests/data/golden/greedy-NAME.ids, a text file of lines
    # comment
    prompt <id> <id> ...      the prompt's token ids
    greedy <id> <id> ...      the generated ids, in order
and tests/data/golden/greedy.json (settings, reference version, decoded text).

Rerun (from the repository root, seconds): python3 tools/golden/make-greedy.py [--n 32]
Deterministic: 2 threads, batch 512, no sampling.
"""

import argparse
import glob
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_reference as ref  # noqa: E402


def greedy(llm, prompt_ids, n):
    import llama_cpp

    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    llm.reset()
    llm.eval(prompt_ids)
    out = []
    for _ in range(n):
        logits = np.asarray(llm.scores[llm.n_tokens - 1])
        tok = int(np.argmax(logits))  # first maximum = lowest id on ties
        out.append(tok)
        if llama_cpp.llama_vocab_is_eog(vocab, tok):
            return out, "end-of-generation token"
        llm.eval([tok])
    return out, f"{n} tokens"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model")
    ap.add_argument("--n", type=int, default=32, help="tokens to generate at most")
    ap.add_argument("--prompts", default=os.path.join(ref.REPO, "tests/data/prompts"))
    ap.add_argument("--out", default=os.path.join(ref.REPO, "tests/data/golden"))
    args = ap.parse_args()

    model = ref.model_path(args.model)
    llm, settings = ref.open_reference(model, n_ctx=512)
    results = {}
    paths = sorted(glob.glob(os.path.join(args.prompts, "*.txt")))
    if not paths:
        sys.exit(f"{args.prompts}: no *.txt prompts")
    for path in paths:
        name = os.path.splitext(os.path.basename(path))[0]
        prompt = open(path, "rb").read()
        prompt_ids = llm.tokenize(prompt, add_bos=True, special=True)
        ids, stop = greedy(llm, prompt_ids, args.n)
        text = llm.detokenize(ids, special=True).decode("utf-8", errors="replace")
        with open(os.path.join(args.out, f"greedy-{name}.ids"), "w", encoding="utf-8") as f:
            f.write(f"# llama.cpp greedy continuation of {os.path.relpath(path, ref.REPO)}, ")
            f.write("made by tools/golden/make-greedy.py (see greedy.json)\n")
            f.write("prompt " + " ".join(map(str, prompt_ids)) + "\n")
            f.write("greedy " + " ".join(map(str, ids)) + "\n")
        results[name] = {
            "prompt_file": os.path.relpath(path, ref.REPO),
            "prompt_tokens": len(prompt_ids),
            "generated_tokens": len(ids),
            "stopped_on": stop,
            "text": text,
        }
        print(f"{name}: {len(prompt_ids)} prompt tokens -> {len(ids)} ({stop}): {text!r}")

    ref.write_json(
        os.path.join(args.out, "greedy.json"),
        {
            "what": "llama.cpp greedy (temperature 0, arg-max) continuations of the prompts",
            "made_by": "tools/golden/make-greedy.py",
            "reference": ref.reference_info(),
            "model": os.path.basename(model),
            "model_sha256": ref.sha256_file(model),
            "max_new_tokens": args.n,
            "stop": "after an end-of-generation token (llama_vocab_is_eog), which is stored",
            "tokenize": "llm.tokenize(prompt_bytes, add_bos=True, special=True): BOS as the vocab "
            "says (none for SmolLM2), special-token text parsed",
            "llama_settings": {**settings, "flash_attn": False, "type_k": "f16", "type_v": "f16"},
            "prompts": results,
        },
    )


if __name__ == "__main__":
    main()
