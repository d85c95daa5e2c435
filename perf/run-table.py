#!/usr/bin/env python3
"""Markdown table for perf/run.sh: medians over the rounds of one run's per-sample CSV.

For each test: tokens/s (median, min-max over rounds), the ratio to the best llama.cpp
configuration of that test (named), ms/token; for decode the bandwidth bound
(weight bytes + K/V bytes read per token) / (same-run STREAM read bandwidth, median of rounds)
and the share of it reached (each round against its own STREAM probe, then the median); for prefill GFLOP/s and the share of the machine's fp32 FMA and int8 VNNI peaks.

Peaks: perf/run.sh measures them in the same run with perf/peak (per thread, all threads at
once: fp32 FMA and the int8 dot instruction the prefill kernels use) and passes them as
--peak-fp32/--peak-int8. Without them the defaults are nominal: on an AVX-512 machine perf.md
4.2's Zen 5 (257 GFLOP/s fp32, 1015 GOP/s int8 per core at ~4.0 GHz; a Zen 4 issues half of that
int8 rate), on an AVX2-only one a 2-FMA-pipe core at 3.0 GHz (96 GFLOP/s, 384 GOP/s). Where the
CPU has AMX, perf/peak also measures the bf16 tile product (--peak-amx) and the prefill rows get
a third share, against the unit adakv's prompt products run on there.

Several models (perf/run.sh -m ... or --zoo) give one block of rows per model.
"""
import argparse
import csv
import statistics
import sys
from collections import defaultdict

import gguf


def model_figures(path):
    """Weight bytes, linear-layer parameter count, and the attention shape from the GGUF."""
    r = gguf.GGUFReader(path)
    names = {t.name: t for t in r.tensors}
    # bytes a decoded token reads: all but the embedding table, unless it is also the output head
    w_bytes = sum(int(t.n_bytes) for t in r.tensors
                  if t.name != "token_embd.weight" or "output.weight" not in names)
    lin = sum(int(t.n_elements) for t in r.tensors
              if t.name.startswith("blk.") and len(t.shape) == 2)
    out = names.get("output.weight", names["token_embd.weight"])

    def field(key):
        f = r.fields[key]
        return int(f.parts[f.data[0]][0])

    arch = bytes(r.fields["general.architecture"].parts[-1]).decode()
    n_layer = field(f"{arch}.block_count")
    n_head = field(f"{arch}.attention.head_count")
    n_kv = field(f"{arch}.attention.head_count_kv")
    key_len = f"{arch}.attention.key_length"
    head_dim = field(key_len) if key_len in r.fields else field(f"{arch}.embedding_length") // n_head
    return dict(w_bytes=w_bytes, lin=lin, out=int(out.n_elements), n_layer=n_layer,
                n_head=n_head, n_kv=n_kv, head_dim=head_dim)


def parse_test(name):
    """('pp', 512, 0) / ('tg', 128, depth)."""
    kind = name[:2]
    if "@d" in name:
        n, d = name[2:].split("@d")
        return kind, int(n), int(d)
    return kind, int(name[2:]), 0


def prefill_flop(m, t):
    """Linear layers for every token, the output head for the last token only (as llama-bench
    and adakv-bench time it), causal attention: 2 x 2 x head_dim FLOP per (query head, key)."""
    attn = m["n_layer"] * m["n_head"] * 4 * m["head_dim"] * t * (t + 1) / 2
    return 2 * m["lin"] * t + 2 * m["out"] + attn


def peer_kv_bytes_per_token(m, kv):
    elems = m["n_layer"] * m["n_kv"] * m["head_dim"] * 2
    return elems * (2 if kv.startswith("f16") else 34 / 32)  # q8_0: 34 bytes per 32 values


def avx512_machine():
    try:
        with open("/proc/cpuinfo") as f:
            return "avx512f" in f.read()
    except OSError:
        return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--csv", required=True)
    ap.add_argument("--models", nargs="+", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--command", default="perf/run.sh")
    avx512 = avx512_machine()
    ap.add_argument("--peak-fp32", type=float, default=257.0 if avx512 else 96.0,
                    help="GFLOP/s per core")
    ap.add_argument("--peak-int8", type=float, default=1015.0 if avx512 else 384.0,
                    help="GOP/s per core")
    ap.add_argument("--peak-amx", type=float, default=0.0,
                    help="AMX bf16 tile GFLOP/s per core (0: no AMX; adakv's prompt products "
                         "then run on the VNNI or AVX2 kernels)")
    a = ap.parse_args()
    figures = {}
    for path in a.models:
        name = path.rsplit("/", 1)[-1]
        figures[name[:-5] if name.endswith(".gguf") else name] = model_figures(path)
    samples = defaultdict(list)  # (model, test, tool, config) -> [tps]
    by_round = defaultdict(list)  # same key -> [(round, tps)]
    kvb = defaultdict(list)
    press_share = defaultdict(list)  # key -> press seconds / depth prefill seconds, per round
    bw = {}
    order = []
    with open(a.csv) as f:
        for row in csv.DictReader(f):
            key = (row["model"], row["test"], row["tool"], row["config"])
            if key not in samples:
                order.append(key)
            if row["tps"]:
                samples[key].append(float(row["tps"]))
                by_round[key].append((row["round"], float(row["tps"])))
            if row["kv_read_bytes"]:
                kvb[key].append(float(row["kv_read_bytes"]))
            if row.get("press_s") and row.get("depth_fill_s") and float(row["depth_fill_s"]) > 0:
                press_share[key].append(float(row["press_s"]) / float(row["depth_fill_s"]))
            if row["stream_read_GBps"]:
                bw[row["round"]] = float(row["stream_read_GBps"])
    stream = statistics.median(bw.values()) if bw else float("nan")
    peak32, peak8 = a.peak_fp32 * a.threads, a.peak_int8 * a.threads

    sizes = ", ".join(f"{n} {m['w_bytes'] / 1e6:.1f} MB" for n, m in figures.items())
    print(f"Command: `{a.command}`; {a.threads} threads; medians over "
          f"{max((len(v) for v in samples.values()), default=0)} interleaved rounds; "
          f"same-run STREAM read bandwidth (median of rounds) **{stream:.1f} GB/s**; "
          f"weights read per token: {sizes}.\n")
    amx = a.peak_amx > 0
    peak_head = "% fp32 / int8 / AMX bf16 peak" if amx else "% fp32 / int8 peak"
    print("| model | test | engine | config | t/s median (min-max) | vs best llama.cpp | ms/token "
          f"| decode bound t/s | % of bound | GFLOP/s | {peak_head} |")
    print("| --- | --- | --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |")
    groups = []
    for mod, t, _, _ in order:
        if (mod, t) not in groups:
            groups.append((mod, t))
    for mod, test in groups:
        m = figures[mod]
        kind, n, depth = parse_test(test)
        peers = {k: statistics.median(v) for k, v in samples.items()
                 if k[:2] == (mod, test) and k[2] == "llama.cpp" and v}
        best_key = max(peers, key=peers.get) if peers else None
        best = peers[best_key] if best_key else None
        for key in [k for k in order if k[:2] == (mod, test)]:
            v = samples[key]
            if not v:
                print(f"| {mod} | {test} | {key[2]} | {key[3]} | failed | | | | | | |")
                continue
            med = statistics.median(v)
            ratio = ""
            if best:
                ratio = f"**{med / best:.2f}x** ({best_key[3]})" if key[2] == "adakv" else \
                    f"{med / best:.2f}x"
            cells = [mod, test, key[2], key[3], f"{med:.1f} ({min(v):.1f}-{max(v):.1f})", ratio,
                     f"{1e3 / med:.2f}"]
            if kind == "tg":
                ctx = depth + n / 2  # average context over the timed decodes
                if key[2] == "llama.cpp":
                    kv = peer_kv_bytes_per_token(m, key[3]) * ctx
                else:
                    per_tok = m["n_layer"] * m["n_kv"] * (2 * m["head_dim"] + 8)
                    kv = (statistics.median(kvb[key]) if kvb.get(key) else 0) + per_tok * n / 2
                bound = stream * 1e9 / (m["w_bytes"] + kv)
                # the share of each round's own bound (its STREAM probe), then the median: the
                # VM's bandwidth moves between rounds, and a median t/s over a median bound
                # pairs figures of different rounds
                shares = [tps * (m["w_bytes"] + kv) / (bw[rnd] * 1e9)
                          for rnd, tps in by_round[key] if rnd in bw]
                share = statistics.median(shares) if shares else med / bound
                cells += [f"{bound:.0f}", f"{100 * share:.0f}%", "", ""]
            else:
                gf = prefill_flop(m, n) * med / n / 1e9
                share = f"{100 * gf / peak32:.0f}% / {100 * gf / peak8:.0f}%"
                if amx:  # adakv's prompt products run on the tiles where the CPU has them
                    share += f" / {100 * gf / (a.peak_amx * a.threads):.0f}%"
                cells += ["", "", f"{gf:.0f}", share]
            print("| " + " | ".join(cells) + " |")
    notes = [f"{k[0]} {k[1]} {k[3]}: {100 * statistics.median(v):.2f}%"
             for k, v in press_share.items() if statistics.median(v) > 0]
    if notes:
        print("\nPress time (scoring, budgets, compaction) as a share of the untimed depth "
              "prefill it ran in: " + "; ".join(notes) + ".")
    print(f"\nPeaks per thread: fp32 {a.peak_fp32:.0f} GFLOP/s, int8 {a.peak_int8:.0f} GOP/s"
          + (f", AMX bf16 {a.peak_amx:.0f} GFLOP/s." if amx else "."))
    return 0


if __name__ == "__main__":
    sys.exit(main())
