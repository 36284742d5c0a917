#!/usr/bin/env bash
# Constrained-sampling cost (docs/benchmarks.md, issue 12): decode tok/s with and without a nested JSON schema, on
# sharpinfer serve and (when given its bin folder) llama.cpp's llama-server, same model, prompt, greedy decoding and
# max_tokens, in one sitting. Both servers stay up (an idle server costs nothing); each round runs the four
# configurations one after another and the medians of the rounds are printed, so a drifting machine moves all alike.
# Before the rounds, one request per server warms it up and one constrained request per server is timed apart: the
# first time sharpinfer sees a schema it computes the token masks of every new grammar state (later requests with
# the same schema reuse them; llama.cpp has no such cache, so its first request is like the others).
# Decode tok/s is measured the same way for both: (completion tokens - 1) / (last streamed token - first streamed
# token), from /v1/completions with stream and usage; unconstrained requests set ignore_eos so they run to max_tokens.
#   bench/structured-output.sh [path/to/llama.cpp/build/bin] [threads] [rounds] [max_tokens]
#   MODEL=file.gguf (default /work/bench-models/qwen3-0.6b-q8_0-s1.gguf, or .cache/models/qwen3-0.6b-q8_0.gguf)
# Output: readable lines, and one JSON line per configuration prefixed with "JSON ".
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
llama="${1:-}"; threads="${2:-2}"; rounds="${3:-3}"; max_tokens="${4:-256}"
model="${MODEL:-/work/bench-models/qwen3-0.6b-q8_0-s1.gguf}"
[ -f "$model" ] || model="$("$root/bench/models.sh" qwen3-0.6b:q8_0)"
dotnet build "$root/src/SharpInfer.Cli/SharpInfer.Cli.csproj" -c Release -v q -nologo >/dev/null
# array of 8 objects, each with a bounded string, an integer range, an enum array and a nested object (boolean, date)
schema='{"type":"array","minItems":8,"maxItems":8,"items":{"type":"object","properties":{"name":{"type":"string","minLength":10,"maxLength":20},"n":{"type":"integer","minimum":0,"maximum":999},"tags":{"type":"array","items":{"enum":["red","green","blue"]},"minItems":2,"maxItems":3},"meta":{"type":"object","properties":{"ok":{"type":"boolean"},"when":{"type":"string","format":"date"}},"required":["ok","when"],"additionalProperties":false}},"required":["name","n","tags","meta"],"additionalProperties":false}}'
si_port=8097; llama_port=8098
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT
wait_up() { for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$1/health" >/dev/null 2>&1 && return 0; sleep 1; done; echo "server on port $1 did not come up" >&2; return 1; }
for port in $si_port $llama_port; do
  if curl -s "http://127.0.0.1:$port/health" >/dev/null 2>&1; then echo "port $port is in use" >&2; exit 1; fi
done
SHARPINFER_NO_BUILD=1 "$root/sharpinfer" serve -m "$model" --port $si_port -t "$threads" >/tmp/structured-bench-si.log 2>&1 &
pids+=($!); wait_up $si_port
if [ -n "$llama" ]; then
  "$llama/llama-server" -m "$model" --port $llama_port -t "$threads" -np 1 -c 4096 >/tmp/structured-bench-llama.log 2>&1 &
  pids+=($!); wait_up $llama_port
fi

measure() {   # $1 server (sharpinfer|llama-server), $2 free|schema, $3 max tokens: prints "tok_per_s completion_tokens"
  python3 - "$1" "$2" "$3" "$schema" $si_port $llama_port <<'PY'
import json, sys, time, urllib.request
server, mode, n, schema, si_port, llama_port = sys.argv[1], sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4]), sys.argv[5], sys.argv[6]
body = {"prompt": "Data:", "max_tokens": n, "temperature": 0, "seed": 1, "stream": True,
        "stream_options": {"include_usage": True}}
if mode == "free": body["ignore_eos"] = True
elif server == "sharpinfer":   # OpenAI's field
    body["response_format"] = {"type": "json_schema", "json_schema": {"name": "nested", "strict": True, "schema": schema}}
else:                          # llama-server's field (its /v1/completions takes no response_format)
    body["json_schema"] = schema
port = si_port if server == "sharpinfer" else llama_port
req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/completions", json.dumps(body).encode(), {"Content-Type": "application/json"})
first = last = None; tokens = None
with urllib.request.urlopen(req, timeout=3600) as r:
    for line in r:
        line = line.decode().strip()
        if not line.startswith("data:") or line == "data: [DONE]": continue
        d = json.loads(line[5:])
        if d.get("usage"): tokens = d["usage"]["completion_tokens"]
        for c in d.get("choices") or []:
            if c.get("text"):
                now = time.perf_counter()
                first = first or now; last = now
print(f"{(tokens - 1) / (last - first):.3f} {tokens}")
PY
}
servers=(sharpinfer); [ -n "$llama" ] && servers+=(llama-server)
echo "== model $model, $threads threads, max_tokens $max_tokens, $rounds rounds"
for s in "${servers[@]}"; do measure "$s" free 16 >/dev/null; done   # warm-up: JIT, first forward passes
declare -A cold all
for s in "${servers[@]}"; do cold[$s]="$(measure "$s" schema "$max_tokens")"; echo "  first constrained request  $s: ${cold[$s]% *} tok/s (${cold[$s]#* } tokens)"; done
for i in $(seq 1 "$rounds"); do
  for s in "${servers[@]}"; do
    for m in free schema; do all[$s/$m]+="$(measure "$s" $m "$max_tokens")"$'\n'; done
  done
done
for s in "${servers[@]}"; do
  for m in free schema; do
    printf '%s' "${all[$s/$m]}" | python3 -c 'import json,statistics,sys
rows=[l.split() for l in sys.stdin if l.strip()]
v=[float(r[0]) for r in rows]; n=[int(r[1]) for r in rows]
print(f"  {sys.argv[1]:<13} {sys.argv[2]:<7} median {statistics.median(v):7.2f} tok/s  (runs {v}, tokens {n})")
print("JSON " + json.dumps({"server": sys.argv[1], "mode": sys.argv[2], "median_tok_s": statistics.median(v), "runs": v, "tokens": n, "first_constrained": sys.argv[3]}))' "$s" "$m" "${cold[$s]}"
  done
done
med() { printf '%s' "${all[$1]}" | python3 -c 'import statistics,sys; print(statistics.median(float(l.split()[0]) for l in sys.stdin if l.strip()))'; }
ratio() { python3 -c "import sys; print(f'{float(sys.argv[1]) / float(sys.argv[2]):.3f}')" "$1" "$2"; }
echo "  sharpinfer constrained/unconstrained:   $(ratio "$(med sharpinfer/schema)" "$(med sharpinfer/free)")"
if [ -n "$llama" ]; then
  echo "  llama-server constrained/unconstrained: $(ratio "$(med llama-server/schema)" "$(med llama-server/free)")"
  echo "  sharpinfer/llama-server, constrained:   $(ratio "$(med sharpinfer/schema)" "$(med llama-server/schema)")"
  echo "  sharpinfer/llama-server, unconstrained: $(ratio "$(med sharpinfer/free)" "$(med llama-server/free)")"
fi
