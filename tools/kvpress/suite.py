#!/usr/bin/env python3
"""adakv-eval's retrieval suite answered by kvpress (issue 12, part 2b; docs/eval.md).

Reads the cases adakv-eval wrote with --dump-cases (one JSON line per case: the context's and the
question's token ids exactly as adakv-eval prefills them, chat template included, the expected
values, the answer's token limit, the end-of-generation ids), runs each through kvpress 0.5.5 on
the default model dequantized to f32 by transformers (as golden.py), and writes adakv-eval's CSV
(same columns, same keys, same press names), resumable the same way: rows whose key is already in
the file are skipped.

Per case and setting, as adakv-eval does it:
  agnostic  the context alone is prefilled under the press (kvpress's forward hooks compress each
            layer), then the question is prefilled on the compressed cache without a press, at
            positions continuing the context's (as kvpress's pipeline does);
  aware     context and question are one prefill under the press;
  full      no press, the agnostic protocol, written for both modes.
Greedy decoding (argmax, first of equal logits) of at most max_new_tokens, stopped at an
end-of-generation id or as soon as the answer holds every expected value; scored as adakv-eval
(RULER's string_match_all: case-insensitive substring, whitespace runs as one space).

Shared prefill (default; --no-share runs every setting through `with press(model):` instead).
kvpress compresses a layer in a forward hook after that layer's attention ran over the whole
prompt, so the prompt's hidden states, keys and window queries do not depend on the press. One
uncompressed prefill of context + question per case therefore serves every setting: a hook on
each attention layer hands each press's own forward_hook (kvpress's code, unchanged) a cache
holding that layer's keys and values, with the layer input cut to the context for agnostic
settings, and keeps what the press left (the kept rows, or AdaKV's masked_key_indices). The first
aware answer token is the prefill's own last logits. --no-share must give the same rows
(checked on a subset, docs/eval.md).

Presses (kvpress classes; adakv-eval's names in the CSV):
  snapkv        SnapKVPress(window_size, kernel_size)
  ada-snapkv    AdaKVPress(SnapKVPress(...), alpha_safeguard)
  critical      CriticalKVPress(SnapKVPress(...), epsilon 1e-4, first_stage_ratio 0.5)
  ada-critical  CriticalAdaKVPress(SnapKVPress(...), alpha_safeguard, epsilon, first_stage_ratio)
  ada-kvzip     KVzipPress(layerwise=True): question-agnostic only; the layer's heads compete for
                its budget without a floor, as adakv's ada-kvzip (kvpress's default,
                layerwise=False, selects across layers, which adakv does not do); kvpress's own
                reconstruction prompt; run through its context manager (no shared prefill)
kvpress's defaults (window 64, average pooling over 5, alpha_safeguard 0.2, first stage 0.5) are
kept; adakv-eval is run with the settings that select the same rows (docs/kvpress.md), printed by
--adakv-settings.

usage (inside tools/kvpress/venv.sh's venv):
  build/adakv-eval --lengths 1024 --window 64 --dump-cases /tmp/cases-1024.jsonl
  python tools/kvpress/suite.py MODEL.gguf /tmp/cases-1024.jsonl OUT.csv \
      [--press full,snapkv,ada-snapkv] [--kv-ratio 0.5,0.8] [--mode aware,agnostic] [--no-share]
  python tools/kvpress/suite.py --adakv-settings /tmp/cases-1024.jsonl   # adakv-eval's options
"""
import argparse
import json
import os
import re
import sys
import time

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, DynamicCache

import kvpress.presses.kvzip_press as kvzip_press
from kvpress import AdaKVPress, CriticalAdaKVPress, CriticalKVPress, KVzipPress, SnapKVPress

HEADER = ("task,length,depth,sample,seed,press,ratio,mode,n_tokens,n_context,kv_rows,kv_rows_full,"
          "n_expected,n_found,score,correct,answer_tokens,seconds,expected,answer")
WINDOW, KERNEL = 64, 5  # SnapKVPress defaults
ALPHA, FIRST_STAGE, EPS = 0.2, 0.5, 1e-4  # AdaKVPress / CriticalAdaKVPress defaults
PRESSES = ("full", "snapkv", "ada-snapkv", "critical", "ada-critical", "ada-kvzip")
AGNOSTIC_ONLY = ("ada-kvzip",)
OWN_PREFILL = ("ada-kvzip",)  # presses that run more than a forward hook


class GGUFTokenizer:
    """KVzipPress loads the tokenizer from model.config.name_or_path, which for a GGUF file
    needs gguf_file too: hand it the one already loaded."""
    tok = None

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        return cls.tok


def make_press(name, ratio):
    snap = SnapKVPress(compression_ratio=ratio, window_size=WINDOW, kernel_size=KERNEL)
    if name == "snapkv":
        return snap
    if name == "ada-snapkv":
        return AdaKVPress(snap, alpha_safeguard=ALPHA)
    if name == "critical":
        return CriticalKVPress(snap, epsilon=EPS, first_stage_ratio=FIRST_STAGE)
    if name == "ada-critical":
        return CriticalAdaKVPress(snap, alpha_safeguard=ALPHA, epsilon=EPS,
                                  first_stage_ratio=FIRST_STAGE)
    if name == "ada-kvzip":
        return KVzipPress(compression_ratio=ratio, layerwise=True)
    raise ValueError(f"--press: unknown press '{name}' ({', '.join(PRESSES)})")


# ---- adakv-eval's CSV and scoring (tools/eval-csv.c, tools/eval-score.c)

def key_of(c, press, ratio, mode):
    return f"{c['task']},{c['length']},{c['depth']},{c['sample']},{c['seed']},{press},{ratio:g},{mode}"


def done_keys(path):
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        with open(path, "w") as f:
            f.write(HEADER + "\n")
        return set()
    with open(path, "rb") as f:
        data = f.read().decode()
    lines = data.split("\n")
    if lines[0] != HEADER:
        sys.exit(f"suite.py: {path}: not a results file (header differs)")
    if not data.endswith("\n"):  # a row cut short by a kill
        keep = data[:data.rfind("\n") + 1]
        with open(path, "w") as f:
            f.write(keep)
        lines = keep.split("\n")
    return {",".join(l.split(",")[:8]) for l in lines[1:] if l}


def csv_answer(a):
    a = a.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r").replace('"', '""')
    return f'"{a}"'


def normalized(s):
    return re.sub(r"\s+", " ", s).strip().lower()


def score(answer, expected):
    a = normalized(answer)
    found = sum(1 for x in expected if normalized(x) and normalized(x) in a)
    return found, (found / len(expected) if expected else 0.0), bool(expected) and found == len(expected)


# ---- the runs

class Job:
    """One setting of one case: press name, ratio (0 for full), mode, and its cache."""

    def __init__(self, name, ratio, mode):
        self.name, self.ratio, self.mode = name, ratio, mode
        self.press = None if name == "full" else make_press(name, ratio)
        self.cache = DynamicCache()
        self.masked = {}  # layer -> AdaKV's masked_key_indices


def attn_modules(model):
    return [layer.self_attn for layer in model.model.layers]


def shared_prefill(model, ids, n_ct, jobs):
    """One uncompressed prefill of ids; each job's press compresses its own copy of every layer
    (the context's rows only for agnostic jobs and full). Returns the last position's logits."""
    for press in {id(j.press): j.press for j in jobs if j.press}.values():
        press.post_init_from_model(model)
    rotary = model.model.rotary_emb

    def hook(module, args, kwargs, output):
        idx = module.layer_idx
        cache = kwargs["past_key_values"]
        keys, values = cache.layers[idx].keys, cache.layers[idx].values
        hs = kwargs["hidden_states"]
        cos, sin = kwargs["position_embeddings"]
        for j in jobs:
            n = hs.shape[1] if j.mode == "aware" else n_ct
            j.cache.update(keys[:, :, :n].clone(), values[:, :, :n].clone(), idx)
            if j.press is None:
                continue
            kw = dict(kwargs)
            kw["hidden_states"] = hs[:, :n]
            kw["position_embeddings"] = (cos[:, :n], sin[:, :n])
            kw["cache_position"] = kwargs["cache_position"][:n]
            if torch.is_tensor(kw.get("position_ids")):
                kw["position_ids"] = kw["position_ids"][:, :n]
            if torch.is_tensor(kw.get("attention_mask")):
                kw["attention_mask"] = kw["attention_mask"][..., :n, :n]
            kw["past_key_values"] = j.cache
            module.masked_key_indices = None
            j.press.forward_hook(module, args, kw, output)
            j.masked[idx] = getattr(module, "masked_key_indices", None)
            module.masked_key_indices = None
        return output

    hooks = []
    try:
        for m in attn_modules(model):
            m.rotary_emb = rotary  # as BasePress.__call__ does
            hooks.append(m.register_forward_hook(hook, with_kwargs=True))
        out = model(input_ids=torch.tensor([ids]), past_key_values=DynamicCache(), use_cache=True,
                    logits_to_keep=1)
    finally:
        for h in hooks:
            h.remove()
    return out.logits[0, -1]


def own_prefill(model, ids, n_ct, job):
    """--no-share: kvpress's own context manager over this job's prefill (aware: the whole
    prompt; agnostic and full: the context). Returns the aware prefill's last logits, else None."""
    n = len(ids) if job.mode == "aware" else n_ct
    press = job.press
    ctx = press(model) if press else torch.no_grad()
    with ctx:
        out = model(input_ids=torch.tensor([ids[:n]]), past_key_values=job.cache, use_cache=True,
                    logits_to_keep=1)
    for m in attn_modules(model):
        job.masked[m.layer_idx] = getattr(m, "masked_key_indices", None)
    return out.logits[0, -1] if job.mode == "aware" else None


def kv_rows(job, n_layer):
    rows = 0
    for idx in range(n_layer):
        k = job.cache.layers[idx].keys
        rows += k.shape[1] * k.shape[2]
        if job.masked.get(idx) is not None:
            rows -= len(job.masked[idx][0])
    return rows


def answer(model, tok, job, c, logits, start):
    """The question (agnostic, full) on the job's cache, then greedy decoding as adakv-eval."""
    modules = attn_modules(model)
    for m in modules:
        m.masked_key_indices = job.masked.get(m.layer_idx)
    ct, qt = c["context_ids"], c["question_ids"]
    pos = start
    if logits is None:  # the question on top of the compressed context, no press
        out = model(input_ids=torch.tensor([qt]), past_key_values=job.cache,
                    position_ids=torch.arange(len(ct), len(ct) + len(qt)).unsqueeze(0),
                    use_cache=True, logits_to_keep=1)
        logits = out.logits[0, -1]
        pos = len(ct) + len(qt)
    eog = set(c["eog_ids"])
    ids = []
    while True:
        nid = int(torch.argmax(logits))
        if nid in eog:
            break
        ids.append(nid)
        text = tok.decode(ids, skip_special_tokens=True)
        if score(text, c["expected"])[2] or len(ids) == c["max_new_tokens"]:
            break
        out = model(input_ids=torch.tensor([[nid]]), past_key_values=job.cache,
                    position_ids=torch.tensor([[pos]]), use_cache=True)
        logits = out.logits[0, -1]
        pos += 1
    for m in modules:
        m.masked_key_indices = None
    return ids, tok.decode(ids, skip_special_tokens=True)


def run_case(model, tok, c, todo, share, out, path):
    ct, qt = c["context_ids"], c["question_ids"]
    ids = ct + qt
    cfg = model.config
    per_token = cfg.num_hidden_layers * cfg.num_key_value_heads
    jobs = [Job(n, r, m) for (n, r, m) in todo]
    shared = [j for j in jobs if share and j.name not in OWN_PREFILL]
    t0 = time.time()
    aware_logits = shared_prefill(model, ids, len(ct), shared) if shared else None
    t_shared = (time.time() - t0) / max(1, len(shared))
    for j in jobs:
        t1 = time.time()
        logits = aware_logits if j.mode == "aware" else None
        if j not in shared:
            logits = own_prefill(model, ids, len(ct), j)
        rows = kv_rows(j, cfg.num_hidden_layers)
        n_full = (len(ids) if j.mode == "aware" else len(ct)) * per_token
        start = len(ids)
        a_ids, text = answer(model, tok, j, c, logits, start)
        found, sc, ok = score(text, c["expected"])
        secs = time.time() - t1 + (t_shared if j in shared else 0.0)
        modes = ["agnostic", "aware"] if j.name == "full" else [j.mode]
        for mode in modes:
            k = key_of(c, j.name, j.ratio, mode)
            if k in done:
                continue
            out.write(f"{k},{len(ids)},{len(ct)},{rows},{n_full},{len(c['expected'])},{found},"
                      f"{sc:.4f},{int(ok)},{len(a_ids)},{secs:.3f},{'|'.join(c['expected'])},"
                      f"{csv_answer(text)}\n")
            out.flush()
            done.add(k)
        j.cache = None


def adakv_settings(cases):
    """adakv-eval's options selecting kvpress's rows (docs/kvpress.md), per (length, ratio): the
    Ada-KV floor and CriticalKV's stage 1 count the window in kvpress, adakv's do not; mapped for
    the mean prompt length of the cases (both modes), as golden.py maps one prompt."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import golden
    assert golden.WINDOW == WINDOW and golden.KERNEL == KERNEL
    by_len = {}
    for c in cases:
        by_len.setdefault(c["length"], []).extend([c["n_tokens"], c["n_context"]])
    for length, Ls in sorted(by_len.items()):
        L = round(sum(Ls) / len(Ls))
        for r in (0.5, 0.8):
            print(f"length {length} (mean L {L}, range {min(Ls)}-{max(Ls)}) ratio {r}: "
                  f"--window {WINDOW} --press-opt pool=avg --press-opt pool-kernel={KERNEL} "
                  f"--press-opt ada=kvpress --press-opt alpha={golden.ada_alpha(L, r):.6f} "
                  f"--press-opt critical-ratio={golden.critical_ratio(L, r):.6f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model", nargs="?")
    ap.add_argument("cases")
    ap.add_argument("csv", nargs="?")
    ap.add_argument("--press", default="full,snapkv,ada-snapkv")
    ap.add_argument("--kv-ratio", default="0.5,0.8")
    ap.add_argument("--mode", default="aware,agnostic")
    ap.add_argument("--tasks", default=None, help="only these tasks of the dump")
    ap.add_argument("--depths", default=None, help="only these depths of the dump")
    ap.add_argument("--no-share", action="store_true")
    ap.add_argument("--adakv-settings", action="store_true")
    a = ap.parse_args()
    if a.adakv_settings:  # one positional: the cases
        cases_path = a.model if a.cases is None else a.cases
        adakv_settings([json.loads(l) for l in open(cases_path)])
        return
    if not a.csv:
        ap.error("MODEL CASES CSV")
    cases = [json.loads(l) for l in open(a.cases)]
    if a.tasks:
        cases = [c for c in cases if c["task"] in a.tasks.split(",")]
    if a.depths:
        cases = [c for c in cases if str(c["depth"]) in a.depths.split(",")]
    for c in cases:
        if c["window"] != WINDOW:
            sys.exit(f"suite.py: cases dumped with --window {c['window']}: dump them with "
                     f"--window {WINDOW} (kvpress's SnapKV window) so the CSV says what ran")
    presses = a.press.split(",")
    for p in presses:
        if p not in PRESSES:
            sys.exit(f"suite.py: --press: unknown '{p}' ({', '.join(PRESSES)})")
    ratios = [float(r) for r in a.kv_ratio.split(",")]
    modes = a.mode.split(",")

    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(os.path.dirname(os.path.abspath(a.model)),
                                                 gguf_file=os.path.basename(a.model),
                                                 dtype=torch.float32)
    model.eval()
    tok = AutoTokenizer.from_pretrained(os.path.dirname(os.path.abspath(a.model)),
                                        gguf_file=os.path.basename(a.model))
    GGUFTokenizer.tok = tok
    kvzip_press.AutoTokenizer = GGUFTokenizer
    global done
    done = done_keys(a.csv)
    todo_all = []
    for c in cases:
        todo = []
        for p in presses:
            if p == "full":
                if any(key_of(c, p, 0.0, m) not in done for m in modes):
                    todo.append((p, 0.0, "agnostic"))
                continue
            for r in ratios:
                for m in modes:
                    if p in AGNOSTIC_ONLY and m != "agnostic":
                        continue
                    if key_of(c, p, r, m) not in done:
                        todo.append((p, r, m))
        if todo:
            todo_all.append((c, todo))
    n_rows = sum(len(t) for _, t in todo_all)
    print(f"suite.py: {len(todo_all)} cases, {n_rows} settings to run, {len(done)} rows already "
          f"in {a.csv}", file=sys.stderr, flush=True)
    t0 = time.time()
    with open(a.csv, "a") as out, torch.no_grad():
        for i, (c, todo) in enumerate(todo_all):
            run_case(model, tok, c, todo, not a.no_share, out, a.csv)
            print(f"suite.py: case {i + 1}/{len(todo_all)} ({c['task']} {c['length']} depth "
                  f"{c['depth']}) done, {time.time() - t0:.0f} s", file=sys.stderr, flush=True)


done = set()

if __name__ == "__main__":
    main()
