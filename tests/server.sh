#!/usr/bin/env bash
# adakv-server end to end (issue 14), on the default model: the server is started on a free
# loopback port (--port 0) and driven with curl. Each endpoint; streaming; stop strings; greedy
# answers equal to adakv-run's (a plain prompt, a chat turn, a conversation, and a question on a stored
# ada-snapkv context, which must also give the same answer twice: forks leave it untouched);
# bad inputs (malformed JSON, unknown fields, wrong types, a prompt over the context, bodies
# over --max-body, unknown routes and methods, the API key), 8 concurrent clients decoded in
# shared batches, 503 on a full queue, LRU eviction under --kv-memory, a client that stalls or
# leaves mid-stream; and a clean exit on SIGTERM (under ASan: no leak, no error).
set -uo pipefail
: "${ADAKV_BUILDDIR:?run through make check}" "${ADAKV_MODEL:?run through make check}"
SERVER=$ADAKV_BUILDDIR/adakv-server
RUN=$ADAKV_BUILDDIR/adakv-run
MODEL=$ADAKV_MODEL
KEY=test-key-0123
tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
fails=0
ok() { echo "ok: $*"; }
bad() {
    echo "FAIL: $*"
    fails=$((fails + 1))
}
# { CONDITION; }; verdict DESCRIPTION: ok or FAIL by the condition's status
verdict() {
    # shellcheck disable=SC2181
    if [ $? = 0 ]; then ok "$1"; else bad "$1"; fi
}
# json FILE PYTHON-EXPR: prints the expression over the parsed JSON file `j`
json() { python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print($2)" "$1"; }

# start NAME FLAGS...: a server on a free port; sets PORT and the pid in pids
start() {
    local name=$1
    shift
    "$SERVER" -m "$MODEL" --host 127.0.0.1 --port 0 -t 2 "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" &
    local pid=$!
    pids+=("$pid")
    eval "PID_$name=$pid"
    for _ in $(seq 600); do
        PORT=$(sed -n 's/^adakv-server: listening on http:\/\/127.0.0.1:\([0-9]*\)$/\1/p' "$tmp/$name.out")
        [ -n "$PORT" ] && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "FAIL: server $name did not start:"
    cat "$tmp/$name.err"
    exit 1
}

# req PORT METHOD PATH [BODY-FILE] [curl args...]: the body in $tmp/out, prints the status
req() {
    local port=$1 method=$2 path=$3 body=${4:-}
    shift 4 2>/dev/null || shift $#
    local data=()
    [ -n "$body" ] && data=(--data-binary "@$body")
    curl -s --max-time 300 -o "$tmp/out" -w '%{http_code}' -X "$method" \
        -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' "${data[@]}" "$@" \
        "http://127.0.0.1:$port$path"
}
body() { printf '%s' "$1" >"$tmp/body.json"; echo "$tmp/body.json"; }
# is_error STATUS-EXPECTED GOT: the status and a JSON error body {"error":{message,type,code}}
is_error() {
    [ "$2" = "$1" ] && [ "$(json "$tmp/out" "j['error']['code']")" = "$1" ] &&
        [ -n "$(json "$tmp/out" "j['error']['message']")" ]
}

start main --api-key "$KEY" -c 2048 --parallel 4 --queue 4 --max-body 65536 --timeout 3
MAIN=$PORT

# ---- health, models, the API key ----
{ [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$MAIN/health")" = 200 ]; }; verdict "GET /health without a key: 200"
st=$(curl -s -o "$tmp/out" -w '%{http_code}' "http://127.0.0.1:$MAIN/v1/models")
{ is_error 401 "$st"; }; verdict "GET /v1/models without a key: 401 JSON error"
st=$(curl -s -o "$tmp/out" -w '%{http_code}' -H 'Authorization: Bearer test-key-0124' "http://127.0.0.1:$MAIN/v1/models")
{ is_error 401 "$st"; }; verdict "a wrong key (one byte off): 401"
st=$(curl -s -o "$tmp/out" -w '%{http_code}' -H 'Authorization: Bearer test-key-012' "http://127.0.0.1:$MAIN/v1/models")
{ is_error 401 "$st"; }; verdict "a key's prefix: 401"
st=$(req "$MAIN" GET /v1/models)
{ [ "$st" = 200 ] && [ "$(json "$tmp/out" "len(j['data']), j['data'][0]['meta']['arch']")" = "1 llama" ]; }; verdict "GET /v1/models: 200, one model, llama"

# ---- greedy answers equal adakv-run's ----
PROMPT="The capital of France is"
"$RUN" -p "$PROMPT" -n 24 --temp 0 --no-perf -t 2 "$MODEL" >"$tmp/cli.txt"
st=$(req "$MAIN" POST /v1/completions "$(body "{\"prompt\": \"$PROMPT\", \"max_tokens\": 24, \"temperature\": 0}")")
json "$tmp/out" "j['choices'][0]['text']" >"$tmp/srv.txt"
{ [ "$st" = 200 ] && cmp -s "$tmp/cli.txt" "$tmp/srv.txt"; }; verdict "POST /v1/completions greedy = adakv-run -n 24 --temp 0"
{ [ "$(json "$tmp/out" "j['usage']['completion_tokens'], j['choices'][0]['finish_reason']")" = "24 length" ]; }; verdict "usage: 24 completion tokens, finish length"

Q="Name three colours."
"$RUN" --chat -p "$Q" -n 16 --temp 0 --no-perf -t 2 "$MODEL" >"$tmp/cli.txt"
st=$(req "$MAIN" POST /v1/chat/completions "$(body "{\"model\": \"x\", \"messages\": [{\"role\": \"user\", \"content\": \"$Q\"}], \"max_tokens\": 16, \"temperature\": 0}")")
json "$tmp/out" "j['choices'][0]['message']['content']" >"$tmp/chat.txt"
{ [ "$st" = 200 ] && cmp -s "$tmp/cli.txt" "$tmp/chat.txt"; }; verdict "POST /v1/chat/completions greedy = adakv-run --chat"
# a whole conversation: the server renders it in the model's template (its default system
# message first), which adakv-run takes as a plain prompt with the markers written out
CONV=$'<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nName three colours.<|im_end|>\n<|im_start|>assistant\nRed, green and blue.<|im_end|>\n<|im_start|>user\nAnd three more?<|im_end|>\n<|im_start|>assistant\n'
"$RUN" -p "$CONV" -n 16 --temp 0 --no-perf -t 2 "$MODEL" >"$tmp/conv-cli.txt"
st=$(req "$MAIN" POST /v1/chat/completions "$(body '{"messages": [{"role": "user", "content": "Name three colours."}, {"role": "assistant", "content": "Red, green and blue."}, {"role": "user", "content": "And three more?"}], "max_tokens": 16, "temperature": 0}')")
json "$tmp/out" "j['choices'][0]['message']['content']" >"$tmp/conv.txt"
{ [ "$st" = 200 ] && cmp -s "$tmp/conv-cli.txt" "$tmp/conv.txt"; }; verdict "a multi-turn chat greedy = adakv-run on the conversation in the model's template"

# ---- streaming: the deltas add up to the same answer, then [DONE] ----
st=$(req "$MAIN" POST /v1/chat/completions "$(body "{\"messages\": [{\"role\": \"user\", \"content\": \"$Q\"}], \"max_tokens\": 16, \"temperature\": 0, \"stream\": true, \"stream_options\": {\"include_usage\": true}}")")
python3 - "$tmp/out" >"$tmp/stream.txt" <<'PY'
import json, sys
events = [l[6:] for l in open(sys.argv[1]).read().split("\n\n") if l.startswith("data: ")]
assert events[-1] == "[DONE]", events[-1]
chunks = [json.loads(e) for e in events[:-1]]
assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
assert chunks[-2]["choices"][0]["finish_reason"] == "length"
assert chunks[-1]["usage"]["completion_tokens"] == 16
print("".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"]))
PY
{ [ "$st" = 200 ] && cmp -s "$tmp/chat.txt" "$tmp/stream.txt"; }; verdict "streamed chat: role first, deltas = the whole answer, usage, [DONE]"
st=$(req "$MAIN" POST /v1/completions "$(body "{\"prompt\": \"$PROMPT\", \"max_tokens\": 24, \"temperature\": 0, \"stream\": true}")")
python3 -c "
import json,sys
ev=[l[6:] for l in open(sys.argv[1]).read().split('\n\n') if l.startswith('data: ')]
assert ev[-1]=='[DONE]'
print(''.join(json.loads(e)['choices'][0]['text'] for e in ev[:-1]))" "$tmp/out" >"$tmp/stream.txt"
{ cmp -s "$tmp/srv.txt" "$tmp/stream.txt"; }; verdict "streamed completion = the whole answer"

# ---- stop strings, sampling fields ----
# the stop string is a word from the middle of the greedy answer above (whatever the kernels'
# ISA made it), so the stopped text is that answer up to the word's first occurrence
STOP=$(python3 -c "import sys; w=open(sys.argv[1]).read().split(); print(w[len(w) // 2])" "$tmp/srv.txt")
python3 -c "import sys; t=open(sys.argv[1]).read(); print(repr(t[:t.index(sys.argv[2])]), 'stop')" \
    "$tmp/srv.txt" "$STOP" >"$tmp/stop.want"
st=$(req "$MAIN" POST /v1/completions "$(body "$(python3 -c 'import json,sys; print(json.dumps({"prompt": sys.argv[1], "max_tokens": 24, "temperature": 0, "stop": [sys.argv[2], "zzz"]}))' "$PROMPT" "$STOP")")")
{ [ "$st" = 200 ] && [ "$(json "$tmp/out" "repr(j['choices'][0]['text']), j['choices'][0]['finish_reason']")" = "$(cat "$tmp/stop.want")" ]; }; verdict "stop: the text ends before the stop string ('$STOP'), finish stop"
s1=$(req "$MAIN" POST /v1/completions "$(body '{"prompt": "Once upon a time", "max_tokens": 12, "temperature": 1.0, "top_k": 50, "top_p": 0.9, "seed": 7}')")
a1=$(json "$tmp/out" "j['choices'][0]['text']")
s2=$(req "$MAIN" POST /v1/completions "$tmp/body.json")
a2=$(json "$tmp/out" "j['choices'][0]['text']")
{ [ "$s1$s2" = 200200 ] && [ -n "$a1" ] && [ "$a1" = "$a2" ]; }; verdict "sampling with a seed repeats"

# ---- tokenize / detokenize ----
st=$(req "$MAIN" POST /tokenize "$(body '{"content": "Hello world, café"}')")
toks=$(json "$tmp/out" "j['tokens']")
st2=$(req "$MAIN" POST /detokenize "$(body "{\"tokens\": $toks}")")
{ [ "$st$st2" = 200200 ] && [ "$(json "$tmp/out" "j['content']")" = "Hello world, café" ]; }; verdict "tokenize then detokenize gives the text back"
st=$(req "$MAIN" POST /detokenize "$(body '{"tokens": [1, 49152]}')")
{ is_error 400 "$st"; }; verdict "detokenize an id outside the vocabulary: 400"
st=$(req "$MAIN" POST /detokenize "$(body '{"tokens": [-1]}')")
{ is_error 400 "$st"; }; verdict "detokenize a negative id: 400"

# ---- stored documents: prefilled and compressed once, answers as adakv-run's ----
head -c 2500 "$ADAKV_SRCDIR/tests/data/text/fidelity-en.txt" >"$tmp/doc.txt"
printf 'What is this text about?' >"$tmp/q.txt"
python3 -c "import json,sys; print(json.dumps({'text': open(sys.argv[1]).read(), 'press': {'name': 'ada-snapkv', 'ratio': 0.5}}))" "$tmp/doc.txt" >"$tmp/doc.json"
st=$(req "$MAIN" POST /v1/contexts "$tmp/doc.json")
ID=$(json "$tmp/out" "j['id']")
{ [ "$st" = 200 ] && [ "$(json "$tmp/out" "0.45 < j['rows_kept'] / j['rows_full'] < 0.55 and j['bytes'] > 0")" = True ]; }; verdict "POST /v1/contexts: 200, about half the rows kept"
"$RUN" -f "$tmp/doc.txt" --question "$tmp/q.txt" --chat --press ada-snapkv --kv-ratio 0.5 -n 16 --temp 0 --no-perf -t 2 "$MODEL" >"$tmp/cli.txt"
ask='{"context_id": "'$ID'", "messages": [{"role": "user", "content": "What is this text about?"}], "max_tokens": 16, "temperature": 0}'
st=$(req "$MAIN" POST /v1/chat/completions "$(body "$ask")")
json "$tmp/out" "j['choices'][0]['message']['content']" >"$tmp/ctx1.txt"
{ [ "$st" = 200 ] && cmp -s "$tmp/cli.txt" "$tmp/ctx1.txt"; }; verdict "a question on the stored context = adakv-run --question (question-agnostic)"
{ [ "$(json "$tmp/out" "j['usage']['prompt_tokens'] < 40")" = True ]; }; verdict "the question prefilled only its own tokens"
st=$(req "$MAIN" POST /v1/chat/completions "$(body "$ask")")
json "$tmp/out" "j['choices'][0]['message']['content']" >"$tmp/ctx2.txt"
{ cmp -s "$tmp/ctx1.txt" "$tmp/ctx2.txt"; }; verdict "the same question again: the same answer (a fork leaves the stored context as it was)"
st=$(req "$MAIN" POST /v1/completions "$(body '{"context_id": "'$ID'", "prompt": "x", "max_tokens": 2}')")
{ is_error 400 "$st"; }; verdict "a chat context through /v1/completions: 400"
st=$(req "$MAIN" GET /v1/contexts)
{ [ "$st" = 200 ] && [ "$(json "$tmp/out" "[d['id'] for d in j['data']]")" = "['$ID']" ]; }; verdict "GET /v1/contexts lists it"
st=$(req "$MAIN" POST /v1/contexts "$(body '{"text": "short", "press": {"name": "ada-snapkv", "ratio": 0.5}}')")
{ is_error 400 "$st"; }; verdict "a document shorter than the press window: 400"
st=$(req "$MAIN" POST /v1/contexts "$(body '{"text": "some text", "press": {"name": "no-such-press"}}')")
{ is_error 400 "$st"; }; verdict "an unknown press: 400"
st=$(req "$MAIN" POST /v1/contexts "$(body '{"text": "some text", "press": {"name": "snapkv", "ratio": "lots"}}')")
{ is_error 400 "$st"; }; verdict "a press ratio that is no number: 400"
st=$(req "$MAIN" DELETE "/v1/contexts/$ID")
{ [ "$st" = 200 ]; }; verdict "DELETE /v1/contexts/ID: 200"
st=$(req "$MAIN" DELETE "/v1/contexts/$ID")
{ is_error 404 "$st"; }; verdict "DELETE again: 404"
st=$(req "$MAIN" POST /v1/chat/completions "$(body "$ask")")
{ is_error 404 "$st"; }; verdict "a completion on a deleted context: 404"

# ---- bad input: a JSON error with the right status, and the server keeps serving ----
expect() { # expect STATUS DESCRIPTION METHOD PATH BODY-TEXT
    local st
    st=$(req "$MAIN" "$3" "$4" "$(body "$5")")
    { is_error "$1" "$st"; }; verdict "$2: $1"
}
expect 400 "malformed JSON" POST /v1/completions '{"prompt": "a",'
expect 400 "not an object" POST /v1/completions '[1, 2]'
expect 400 "an empty body" POST /v1/chat/completions ''
expect 400 "an unknown field" POST /v1/completions '{"prompt": "a", "max_tokenz": 3}'
expect 400 "max_tokens of the wrong type" POST /v1/completions '{"prompt": "a", "max_tokens": "3"}'
expect 400 "max_tokens not an integer" POST /v1/completions '{"prompt": "a", "max_tokens": 2.5}'
expect 400 "temperature below 0" POST /v1/completions '{"prompt": "a", "temperature": -1}'
expect 400 "top_p above 1" POST /v1/completions '{"prompt": "a", "top_p": 1.5}'
expect 400 "seed huge" POST /v1/completions '{"prompt": "a", "seed": 1e300}'
expect 400 "stop of the wrong type" POST /v1/completions '{"prompt": "a", "stop": 3}'
expect 400 "five stop strings" POST /v1/completions '{"prompt": "a", "stop": ["a","b","c","d","e"]}'
expect 400 "n = 2" POST /v1/completions '{"prompt": "a", "n": 2}'
expect 400 "a penalty" POST /v1/completions '{"prompt": "a", "presence_penalty": 0.5}'
expect 400 "a prompt that is no string" POST /v1/completions '{"prompt": 5}'
expect 400 "no prompt" POST /v1/completions '{"max_tokens": 3}'
expect 400 "an empty prompt" POST /v1/completions '{"prompt": ""}'
expect 400 "messages that are no array" POST /v1/chat/completions '{"messages": "hi"}'
expect 400 "a message without a role" POST /v1/chat/completions '{"messages": [{"content": "hi"}]}'
expect 400 "a chat ending with the assistant's turn" POST /v1/chat/completions '{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}'
expect 400 "a tool message" POST /v1/chat/completions '{"messages": [{"role": "tool", "content": "a"}, {"role": "user", "content": "c"}]}'
expect 400 "a multi-turn chat on a stored context" POST /v1/chat/completions '{"context_id": "ctx-0", "messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}]}'
expect 400 "an unknown message field" POST /v1/chat/completions '{"messages": [{"role": "user", "content": "a", "x": 1}]}'
expect 400 "a duplicated key" POST /v1/completions '{"prompt": "a", "prompt": "b"}'
expect 400 "a context_id of 100 bytes" POST /v1/completions "{\"context_id\": \"$(printf 'x%.0s' $(seq 100))\", \"prompt\": \"a\"}"
expect 404 "an unknown context_id" POST /v1/completions '{"context_id": "ctx-0", "prompt": "a"}'
expect 404 "a streamed request on an unknown context_id (the status comes before any event)" POST /v1/chat/completions '{"context_id": "ctx-0", "messages": [{"role": "user", "content": "a"}], "stream": true}'
expect 400 "a press option named with printf directives" POST /v1/contexts '{"text": "abc", "press": {"%s%s%n%n%s": 1}}'
expect 400 "malformed JSON quoting printf directives" POST /v1/completions '{"prompt": %s%n%n}'
printf '{"prompt": "a\xff\xfe"}' >"$tmp/bad-utf8.json"
st=$(req "$MAIN" POST /v1/completions "$tmp/bad-utf8.json")
{ is_error 400 "$st"; }; verdict "invalid UTF-8 in the JSON: 400"
python3 -c "print('{\"prompt\": \"' + 'word ' * 2600 + '\"}')" >"$tmp/long.json"
st=$(req "$MAIN" POST /v1/completions "$tmp/long.json")
{ is_error 400 "$st"; }; verdict "a prompt over the context (-c 2048): 400"
python3 -c "print('{\"prompt\": \"' + 'x' * 70000 + '\"}')" >"$tmp/huge.json"
st=$(req "$MAIN" POST /v1/completions "$tmp/huge.json")
{ is_error 413 "$st"; }; verdict "a body over --max-body (Content-Length): 413"
st=$(req "$MAIN" POST /v1/completions "$tmp/huge.json" -H 'Transfer-Encoding: chunked')
{ is_error 413 "$st"; }; verdict "a chunked body over --max-body: 413"
expect 404 "an unknown route" GET /v2/everything ''
expect 405 "GET on a POST endpoint" GET /v1/completions ''
expect 405 "POST on a GET endpoint" POST /health '{}'
expect 405 "PUT on a context" PUT /v1/contexts/x '{}'

# ---- slow and vanishing clients ----
exec 3<>"/dev/tcp/127.0.0.1/$MAIN"
printf 'POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: 100\r\n\r\n{"pro' "$KEY" >&3
{ [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "http://127.0.0.1:$MAIN/health")" = 200 ]; }; verdict "a stalled upload does not block others"
if timeout 10 cat <&3 >/dev/null; then ok "the stalled connection is closed by --timeout"; else bad "the stalled connection is still open after 10 s"; fi
exec 3<&-
curl -s --max-time 1 -o /dev/null -H "Authorization: Bearer $KEY" -d '{"prompt": "Tell a long story.", "max_tokens": 2000, "ignore_eos": true, "stream": true}' "http://127.0.0.1:$MAIN/v1/completions"
curl -s --max-time 1 -o /dev/null -H "Authorization: Bearer $KEY" -d '{"prompt": "Tell a long story.", "max_tokens": 2000, "ignore_eos": true}' "http://127.0.0.1:$MAIN/v1/completions"
{ [ "$(req "$MAIN" GET /health)" = 200 ]; }; verdict "after clients left mid-answer: still serving"

# ---- 8 concurrent clients (4 slots + 4 queued), all answered, decoded in shared steps ----
metric() { sed -n "s/^$1 //p" "$tmp/out"; }
for _ in $(seq 100); do # the two clients that left are retired (not decoding 2000 tokens)
    req "$MAIN" GET /metrics >/dev/null
    [ "$(metric adakv_requests_processing)" = 0 ] && break
    sleep 0.1
done
{ [ "$(metric adakv_requests_processing)" = 0 ]; } && ok "the requests of clients that left are retired" || bad "the requests of clients that left are still decoding"
steps0=$(metric adakv_decode_steps_total)
tok0=$(metric adakv_tokens_predicted_total)
clients=()
for i in $(seq 8); do
    curl -s --max-time 300 -o "$tmp/c$i.json" -w '%{http_code}' -H "Authorization: Bearer $KEY" \
        -d "{\"prompt\": \"Question $i: what is $i plus $i?\", \"max_tokens\": 12, \"ignore_eos\": true, \"temperature\": 0}" \
        "http://127.0.0.1:$MAIN/v1/completions" >"$tmp/c$i.status" &
    clients+=($!)
done
wait_ok=true
for j in "${clients[@]}"; do wait "$j" || wait_ok=false; done
n200=0
for i in $(seq 8); do
    [ "$(cat "$tmp/c$i.status")" = 200 ] && [ "$(json "$tmp/c$i.json" "j['usage']['completion_tokens']")" = 12 ] && n200=$((n200 + 1))
done
{ $wait_ok && [ "$n200" = 8 ]; }; verdict "8 concurrent clients: 8 answers of 12 tokens"
req "$MAIN" GET /metrics >/dev/null
steps=$(($(metric adakv_decode_steps_total) - steps0))
toks=$(($(metric adakv_tokens_predicted_total) - tok0))
echo "   8 clients: $toks tokens in $steps decode steps"
{ [ "$toks" = 96 ] && [ $((steps * 2)) -lt "$toks" ]; }; verdict "continuous batching: fewer decode steps than tokens ($steps < $toks / 2)"
{ grep -q '^# TYPE adakv_kv_bytes gauge$' "$tmp/out"; }; verdict "/metrics is Prometheus text with the KV and context gauges"

# ---- a second server: one slot, a queue of one, room for two documents ----
python3 -c "import json,sys; print(json.dumps({'text': open(sys.argv[1]).read()[:1200], 'press': {'name': 'ada-snapkv', 'ratio': 0.5}}))" "$tmp/doc.txt" >"$tmp/small.json"
st=$(req "$MAIN" POST /v1/contexts "$tmp/small.json")
bytes=$(json "$tmp/out" "j['bytes']")
req "$MAIN" GET /metrics >/dev/null
{ [ "$(metric adakv_kv_bytes)" -ge "$bytes" ] && [ "$(metric adakv_contexts)" = 1 ]; }; verdict "/metrics: the stored context's KV bytes in use"
start small --parallel 1 --queue 1 --kv-memory $((bytes * 5 / 2)) --api-key "$KEY"
SMALL=$PORT
long='{"prompt": "Tell a long story.", "max_tokens": 400, "ignore_eos": true, "temperature": 0}'
curl -s --max-time 300 -o "$tmp/l1.json" -w '%{http_code}' -H "Authorization: Bearer $KEY" -d "$long" "http://127.0.0.1:$SMALL/v1/completions" >"$tmp/l1.status" &
l1=$!
for _ in $(seq 300); do req "$SMALL" GET /metrics >/dev/null; [ "$(metric adakv_requests_processing)" = 1 ] && break; sleep 0.1; done
curl -s --max-time 300 -o "$tmp/l2.json" -w '%{http_code}' -H "Authorization: Bearer $KEY" -d "$long" "http://127.0.0.1:$SMALL/v1/completions" >"$tmp/l2.status" &
l2=$!
for _ in $(seq 300); do req "$SMALL" GET /metrics >/dev/null; [ "$(metric adakv_requests_deferred)" = 1 ] && break; sleep 0.1; done
st=$(req "$SMALL" POST /v1/completions "$(body "$long")")
{ is_error 503 "$st"; }; verdict "a third request with one slot and a queue of one: 503 JSON error"
wait $l1 $l2
{ [ "$(cat "$tmp/l1.status")$(cat "$tmp/l2.status")" = 200200 ]; }; verdict "the running and the queued one both finish"
ids=()
for name in A B; do
    req "$SMALL" POST /v1/contexts "$tmp/small.json" >/dev/null
    ids+=("$(json "$tmp/out" "j['id']")")
done
st=$(req "$SMALL" POST /v1/completions "$(body '{"context_id": "'"${ids[0]}"'", "prompt": "x", "max_tokens": 1}')")
{ is_error 400 "$st"; }; verdict "a raw-text question on a chat context: 400, and it still counts as a use"
req "$SMALL" POST /v1/contexts "$tmp/small.json" >/dev/null
C=$(json "$tmp/out" "j['id']")
req "$SMALL" GET /v1/contexts >/dev/null
{ [ "$(json "$tmp/out" "sorted(d['id'] for d in j['data'])")" = "$(python3 -c "print(sorted(['${ids[0]}', '$C']))")" ]; }; verdict "--kv-memory: the least recently used context (B) evicted, A and C kept"
req "$SMALL" GET /metrics >/dev/null
{ [ "$(metric adakv_context_evictions_total)" = 1 ]; }; verdict "/metrics counts the eviction"

# ---- SIGTERM: both exit 0 (under ASan: nothing leaked, no error) ----
for name in main small; do
    pid=$(eval "echo \$PID_$name")
    kill -TERM "$pid"
    wait "$pid"
    rc=$?
    { [ "$rc" = 0 ]; }; verdict "$name server: exit status 0 after SIGTERM"
    [ "$rc" = 0 ] || tail -20 "$tmp/$name.err"
done
pids=()
echo "server.sh: $fails failed"
[ "$fails" = 0 ]
