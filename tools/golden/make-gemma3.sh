#!/usr/bin/env bash
# Makes the Gemma 3 270M goldens (tests/test_gemma3.c) with the same scripts and settings as the
# default model's: llama.cpp's token ids on the tokenizer corpus, teacher-forced top-16 logits over
# 2,048 positions of perplexity-en.txt and greedy continuations of tests/data/prompts-gemma3/.
# Perplexity is compared by running both tools (README, "Gemma 3 270M against llama.cpp"). The
# tiny gemma3 variant's logits come from tools/golden/make-tiny-logits.py --arch gemma3.
#
# Usage: tools/golden/make-gemma3.sh    (after tools/fetch-gemma.sh and perf/build-peer.sh;
#        the llama_cpp Python package must import, e.g. from the peer's sdist:
#        PYTHONPATH=perf/peer/llama_cpp_python-0.3.36 LLAMA_CPP_LIB_PATH=perf/peer/build/bin
#        LLAMA_CPP_SDIST=perf/peer/llama_cpp_python-0.3.36; Python needs numpy)
# A few minutes on 2 cores; deterministic (2 threads, batch 512, f16 KV, flash attention off).
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
model=$top/models/gemma-3-270m-q4_k_m.gguf
out=$top/tests/data/golden/gemma3
py=${PYTHON:-python3}
[ -f "$model" ] || { echo "make-gemma3: $model missing (tools/fetch-gemma.sh)" >&2; exit 1; }
mkdir -p "$out"
cd "$top"
"$py" tools/make-golden-tokens.py "$model" tests/data/tokenizer-corpus.txt \
    tests/data/tokenizer-golden-gemma3.txt
"$py" tools/golden/make-logits.py --model "$model" --out "$out/logits-perplexity-en.bin"
"$py" tools/golden/make-greedy.py --model "$model" --prompts tests/data/prompts-gemma3 --out "$out"
