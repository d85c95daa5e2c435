#!/usr/bin/env python3
"""Paired comparison of Ada-KV presses with their uniform base press, from the per-position KL
file that `adakv-fidelity --kl-out FILE` writes (tools/fidelity.sh makes
perf/out/fidelity-positions.csv).

Every press is scored on the same continuation positions, so the difference of two presses is
best judged per position: for each budget, mean of KL(ada-X) - KL(X) over the positions, its
standard error, and on how many positions Ada-KV's KL is lower. A mean difference within about
two standard errors of zero is not a measured difference.

Usage: tools/fidelity-paired.py perf/out/fidelity-positions.csv
"""
import csv
import math
import sys
from collections import defaultdict


def main(path):
    kl = defaultdict(dict)  # (press, budget) -> {position: kl}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            kl[(row["press"], row["budget"])][int(row["position"])] = float(row["kl"])
    print("%-26s %6s %12s %10s %7s %14s" % ("ada press vs base", "budget", "mean diff", "se",
                                            "diff/se", "ada lower at"))
    def order(key):
        press, budget = key
        return (press, int(budget) if budget.isdigit() else -1)

    for (press, budget), ada in sorted(kl.items(), key=lambda item: order(item[0])):
        if not press.startswith("ada-") or (press[4:], budget) not in kl:
            continue
        base = kl[(press[4:], budget)]
        common = sorted(set(ada) & set(base))
        n = len(common)
        if n < 2:
            continue
        d = [ada[p] - base[p] for p in common]
        mean = sum(d) / n
        var = sum((x - mean) ** 2 for x in d) / (n - 1)
        se = math.sqrt(var / n)
        lower = sum(x < 0 for x in d)
        print("%-26s %6s %+12.6f %10.6f %+7.2f %8d / %d" % (
            "%s vs %s" % (press, press[4:]), budget, mean, se, mean / se if se else 0.0, lower, n))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: fidelity-paired.py positions.csv")
    main(sys.argv[1])
