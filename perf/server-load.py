#!/usr/bin/env python3
"""perf/server-load.py: N concurrent chat clients against an OpenAI-shaped server, on one shared
document. Each client sends its requests one after another (temperature 0, ignore_eos, the same
max_tokens), so N requests are in flight at any time. Prints one line of JSON: requests/s,
p50/p99 latency, aggregate generated tokens/s and the median time to first token reported by
the server. Standard library only (urllib, threads).

  server-load.py --url http://127.0.0.1:8080 --clients 8 --requests 16 --max-tokens 32 \
                 [--context-id ID | --document FILE] [--api-key KEY]

With --context-id the question goes to adakv-server's stored context; with --document the
document is sent in every prompt (llama-server reuses it from its per-slot prompt cache)."""
import argparse
import json
import statistics
import threading
import time
import urllib.request


def post(url, body, key):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    req.add_header("Content-Type", "application/json")
    if key:
        req.add_header("Authorization", "Bearer " + key)
    with urllib.request.urlopen(req, timeout=3600) as r:
        return json.load(r)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--requests", type=int, default=16)
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--context-id")
    ap.add_argument("--document")
    ap.add_argument("--api-key")
    a = ap.parse_args()
    doc = open(a.document).read() if a.document else None
    lat, ttft, toks, errors = [], [], [], []
    lock = threading.Lock()
    todo = list(range(a.requests))

    def client():
        while True:
            with lock:
                if not todo:
                    return
                i = todo.pop()
            q = f"Question {i}: what is the main subject of the text, in one sentence?"
            body = {"messages": [{"role": "user", "content": (doc + "\n" + q) if doc else q}],
                    "max_tokens": a.max_tokens, "temperature": 0, "ignore_eos": True}
            if a.context_id:
                body["context_id"] = a.context_id
            t0 = time.monotonic()
            try:
                r = post(a.url + "/v1/chat/completions", body, a.api_key)
            except Exception as e:  # a failed request is counted, not fatal
                with lock:
                    errors.append(str(e))
                continue
            dt = time.monotonic() - t0
            t = r.get("timings", {})
            first = t.get("first_token_ms", t.get("prompt_ms"))
            with lock:
                lat.append(dt)
                toks.append(r["usage"]["completion_tokens"])
                if first is not None:
                    ttft.append(first)

    t0 = time.monotonic()
    threads = [threading.Thread(target=client) for _ in range(a.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - t0
    lat.sort()
    q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] if lat else float("nan")
    print(json.dumps({
        "clients": a.clients, "requests": len(lat), "errors": len(errors),
        "wall_s": round(wall, 2), "requests_per_s": round(len(lat) / wall, 3),
        "p50_s": round(q(0.50), 2), "p99_s": round(q(0.99), 2),
        "tokens_per_s": round(sum(toks) / wall, 2),
        "ttft_ms_median": round(statistics.median(ttft), 1) if ttft else None}))


if __name__ == "__main__":
    main()
