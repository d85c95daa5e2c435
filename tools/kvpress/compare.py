#!/usr/bin/env python3
"""adakv's suite accuracy beside kvpress's, per (press, ratio, mode) (docs/eval.md, issue 12 2b).

Reads adakv-eval CSVs and tools/kvpress/suite.py CSVs (same columns and keys), keeps the cases
both have for a setting, and prints a markdown table: cases answered by each, the difference,
the cases only one of them answers, the cases whose answers are the same text, and whether
|difference| <= 1 case (the issue's target).
Standard library only.

usage: tools/kvpress/compare.py --adakv A.csv[,B.csv] --kvpress K.csv[,L.csv] [--by-length]
"""
import argparse
import csv
import sys

ORDER = ["full", "snapkv", "ada-snapkv", "critical", "ada-critical"]


def read(paths):
    rows = {}
    for p in paths.split(","):
        with open(p, newline="") as f:
            for r in csv.DictReader(f):
                setting = (r["press"], float(r["ratio"]), r["mode"])
                case = (r["task"], int(r["length"]), int(r["depth"]), int(r["sample"]), r["seed"])
                rows[(setting, case)] = (int(r["correct"]), r["answer"])
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--adakv", required=True)
    ap.add_argument("--kvpress", required=True)
    ap.add_argument("--by-length", action="store_true", help="one row per length too")
    a = ap.parse_args()
    ad, kv = read(a.adakv), read(a.kvpress)
    groups = {}
    for (setting, case), ok in ad.items():
        if (setting, case) not in kv:
            continue
        g = [(setting, "all")] + ([(setting, case[1])] if a.by_length else [])
        for key in g:
            groups.setdefault(key, []).append((ok[0], kv[(setting, case)][0], case,
                                               ok[1] == kv[(setting, case)][1]))

    def order(k):
        (press, ratio, mode), length = k
        return (ORDER.index(press) if press in ORDER else 99, ratio, mode,
                0 if length == "all" else length)

    print("| press | ratio | mode | length | cases | adakv | kvpress | adakv - kvpress "
          "| only adakv / only kvpress | same answer text | within 1 case |")
    print("|---|---:|---|---|---:|---:|---:|---:|---:|---:|---|")
    n_ok = n_all = 0
    for k in sorted(groups, key=order):
        (press, ratio, mode), length = k
        v = groups[k]
        if length != "all" and len({x[2][1] for x in groups[((press, ratio, mode), "all")]}) == 1:
            continue  # one length: its row is the "all" row
        na, nk = sum(x[0] for x in v), sum(x[1] for x in v)
        oa = sum(1 for x in v if x[0] and not x[1])
        ok_ = sum(1 for x in v if x[1] and not x[0])
        within = abs(na - nk) <= 1
        if length == "all":
            n_all += 1
            n_ok += within
        lens = sorted({x[2][1] for x in v})
        lt = "+".join(f"{n // 1024}k" if n % 1024 == 0 else str(n) for n in lens)
        print(f"| {press} | {ratio:g} | {mode} | {lt} | {len(v)} | {na} | {nk} | {na - nk:+d} "
              f"| {oa} / {ok_} | {sum(x[3] for x in v)} | {'yes' if within else '**no**'} |")
    print(f"\nwithin 1 case: {n_ok} of {n_all} settings (all lengths together)", file=sys.stderr)


if __name__ == "__main__":
    main()
