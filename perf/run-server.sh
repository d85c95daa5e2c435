#!/usr/bin/env bash
# perf/run-server.sh: adakv-server under N concurrent chat requests about one shared document
# of about D tokens (issue 14): the document is stored once as a context (full cache, then
# Ada-SnapKV keeping 1 - R of the rows), and every request forks it and prefills only its
# question. Prints, per cache: the document's prefill time and KV bytes, one client alone
# (tokens/s, time to first token) and N clients together (requests/s, p50/p99 latency,
# aggregate tokens/s and its ratio to one client's). With perf/peer/bin/llama-server present
# (perf/build-peer.sh with that target added), the same load runs on it, the document inside
# every prompt (its per-slot prompt cache keeps it, filled by one untimed request per slot), with
# the same model, threads and -np N.
# Usage: perf/run-server.sh [-m model.gguf] [-t 2] [-n 8] [-r 16] [-ntg 32] [-d 8000] [-R 0.8]
# Not under `chrt -f`: the spinning engine threads of either server would starve the HTTP
# threads and the clients of the same priority (a run under it gave both servers a fraction of
# their throughput).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
model=$top/models/SmolLM2-135M-Instruct.Q4_1.gguf threads=2 n=8 reqs=16 ntg=32 dtok=8000 ratio=0.8
while [ $# -gt 0 ]; do
    case $1 in
    -m) model=$2 ;;
    -t) threads=$2 ;;
    -n) n=$2 ;;
    -r) reqs=$2 ;;
    -ntg) ntg=$2 ;;
    -d) dtok=$2 ;;
    -R) ratio=$2 ;;
    *) echo "run-server: unknown option $1" >&2; exit 2 ;;
    esac
    shift 2
done
server=${BUILD:-$top/build}/adakv-server
peer=$top/perf/peer/bin/llama-server
load=$top/perf/server-load.py
[ -x "$server" ] || { echo "run-server: $server not built (tools/build.sh)" >&2; exit 1; }
out=$(mktemp -d)
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$out"' EXIT
ctx=$((dtok + 512))

wait_port() { # wait_port LOG: the port a server printed, once it answers /health
    for _ in $(seq 3000); do
        p=$(sed -n 's/.*listening on http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$1" | head -1)
        [ -n "$p" ] && curl -sf "http://127.0.0.1:$p/health" >/dev/null && { echo "$p"; return; }
        sleep 0.1
    done
    echo "run-server: the server did not start: $(tail -3 "$1")" >&2
    exit 1
}
jq_() { python3 -c "import json,sys; j=json.load(sys.stdin); print($1)"; }

"$server" -m "$model" -t "$threads" -c "$ctx" --parallel "$n" --queue "$reqs" --port 0 \
    >"$out/adakv.log" 2>&1 &
pid=$!
port=$(wait_port "$out/adakv.log")
url=http://127.0.0.1:$port
# the document: the fidelity text repeated, cut at dtok tokens by the model's own tokenizer
python3 -c "
import json, sys
t = open(sys.argv[1]).read()
print(json.dumps({'content': (t + '\n') * (4 * int(sys.argv[2]) // len(t) + 2)}))" \
    "$top/tests/data/text/fidelity-en.txt" "$dtok" >"$out/tok.json"
curl -s "$url/tokenize" --data-binary "@$out/tok.json" |
    jq_ "json.dumps({'tokens': j['tokens'][:$dtok]})" >"$out/detok.json"
curl -s "$url/detokenize" --data-binary "@$out/detok.json" | jq_ "j['content']" >"$out/doc.txt"
echo "model $(basename "$model"), $threads threads, document $dtok tokens, $n clients x" \
    "$((reqs / n)) requests, $ntg tokens each (temperature 0, ignore_eos)"
printf '%-22s %9s %10s %10s %9s %9s %9s %8s %8s %9s\n' cache prefill_s "KV MiB" "1: tok/s" \
    "1: TTFT" "N: req/s" "N: tok/s" p50_s p99_s "N/1 tok/s"
for press in full ada-snapkv; do
    body=$(python3 -c "
import json, sys
p = {'name': sys.argv[2]}
if sys.argv[2] != 'full': p['ratio'] = float(sys.argv[3])
print(json.dumps({'text': open(sys.argv[1]).read(), 'press': p}))" "$out/doc.txt" "$press" "$ratio")
    printf '%s' "$body" >"$out/ctx.json"
    curl -s "$url/v1/contexts" --data-binary "@$out/ctx.json" >"$out/ctx.out"
    id=$(jq_ "j['id']" <"$out/ctx.out")
    pre=$(jq_ "round(j['prefill_ms'] / 1e3, 2)" <"$out/ctx.out")
    mib=$(jq_ "round(j['bytes'] / 2**20, 1)" <"$out/ctx.out")
    # one untimed wave of N requests first: the server's first N forks fault their pages in
    # (it keeps them after, see server/main.c), as llama-server's slots are filled below
    python3 "$load" --url "$url" --clients "$n" --requests "$n" --max-tokens 1 --context-id "$id" \
        >/dev/null
    one=$(python3 "$load" --url "$url" --clients 1 --requests 2 --max-tokens "$ntg" --context-id "$id")
    all=$(python3 "$load" --url "$url" --clients "$n" --requests "$reqs" --max-tokens "$ntg" --context-id "$id")
    name=$press
    [ "$press" = full ] || name="$press kept $(python3 -c "print(round(100 * (1 - $ratio)))")%"
    python3 -c "
import json, sys
o, a = json.loads(sys.argv[4]), json.loads(sys.argv[5])
print('%-22s %9s %10s %10.1f %7.0fms %9.3f %9.1f %8.2f %8.2f %8.2fx' % (sys.argv[1], sys.argv[2],
      sys.argv[3], o['tokens_per_s'], o['ttft_ms_median'], a['requests_per_s'], a['tokens_per_s'],
      a['p50_s'], a['p99_s'], a['tokens_per_s'] / o['tokens_per_s']))
if a['errors']: print('  %d requests failed' % a['errors'])" "$name" "$pre" "$mib" "$one" "$all"
    curl -s -X DELETE "$url/v1/contexts/$id" >/dev/null
done
kill "$pid"
wait "$pid" 2>/dev/null || true
pid=""
if [ -x "$peer" ]; then
    "$peer" -m "$model" -t "$threads" -c $((ctx * n)) -np "$n" --port 0 --host 127.0.0.1 \
        >"$out/peer.log" 2>&1 &
    pid=$!
    port=$(wait_port "$out/peer.log")
    # the document into every slot's prompt cache first (N requests at once take the N idle
    # slots), as adakv's stored context is prefilled before its measured requests
    python3 "$load" --url "http://127.0.0.1:$port" --clients "$n" --requests "$n" --max-tokens 1 \
        --document "$out/doc.txt" >/dev/null
    one=$(python3 "$load" --url "http://127.0.0.1:$port" --clients 1 --requests 2 --max-tokens "$ntg" --document "$out/doc.txt")
    all=$(python3 "$load" --url "http://127.0.0.1:$port" --clients "$n" --requests "$reqs" --max-tokens "$ntg" --document "$out/doc.txt")
    python3 -c "
import json, sys
o, a = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print('%-22s %9s %10s %10.1f %7.0fms %9.3f %9.1f %8.2f %8.2f %8.2fx' % ('llama-server', '-', '-',
      o['tokens_per_s'], o['ttft_ms_median'] or 0, a['requests_per_s'], a['tokens_per_s'],
      a['p50_s'], a['p99_s'], a['tokens_per_s'] / o['tokens_per_s']))" "$one" "$all"
else
    echo "llama-server: not built ($peer): run perf/build-peer.sh"
fi
