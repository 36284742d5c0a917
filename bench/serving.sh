#!/usr/bin/env bash
# The serving benchmarks of docs/benchmarks.md, in one run on one machine: batched decoding (llama-batched-bench
# style), offline throughput (continuous vs static vs sequential, two loads, KV waste at block sizes 8 and 16) and
# the online server under load at concurrency 1, 4, 16. When given the bin folder of a llama.cpp you built outside
# this repository, its llama-batched-bench and llama-server run beside ours on the same model file and threads.
#   bench/serving.sh [path/to/llama.cpp/build/bin] [threads]
# Output: readable summaries, then one JSON line per measurement prefixed with "JSON " (for the write-up).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
llama="${1:-}"; threads="${2:-2}"
model="$("$root/bench/models.sh" qwen3-0.6b:q8_0)"
dotnet build "$root/src/SharpInfer.Cli/SharpInfer.Cli.csproj" -c Release -v q -nologo >/dev/null
si() { SHARPINFER_NO_BUILD=1 "$root/sharpinfer" "$@"; }
compact() { python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)))'; }

echo "== batched decoding: PP 128, TG 64, B = 1, 4, 16 (S_TG = generated tokens/s over all sequences)"
si bench batched -m "$model" -npp 128 -ntg 64 -npl 1 4 16 -t "$threads"
[ -n "$llama" ] && "$llama/llama-batched-bench" -m "$model" -c 16384 -b 2048 -ub 512 -npp 128 -ntg 64 -npl 1,4,16 -t "$threads" 2>/dev/null | grep -E '^\|'

echo "== offline throughput, 64 requests, --max-num-seqs 16"
for load in "a 32:128 128" "b 128:512 64:256"; do
  set -- $load
  for mode in continuous static sequential; do
    echo "-- load ($1): input $2, output $3, $mode"
    out=$(si bench throughput -m "$model" --num-prompts 64 --input-len "$2" --output-len "$3" --max-num-seqs 16 --mode "$mode" -t "$threads" --json | compact)
    echo "JSON {\"load\":\"$1\",\"result\":$out}"
  done
done
echo "-- load (a), continuous, block size 8"
out=$(si bench throughput -m "$model" --num-prompts 64 --input-len 32:128 --output-len 128 --max-num-seqs 16 --block-size 8 -t "$threads" --json | compact)
echo "JSON {\"load\":\"a-block8\",\"result\":$out}"

echo "== online serving: 32 requests, ~100-token prompts, 64 output tokens (ignore_eos), concurrency 1, 4, 16"
wait_up() { for _ in $(seq 1 120); do curl -sf "$1/health" >/dev/null 2>&1 && return 0; sleep 1; done; echo "server at $1 did not come up" >&2; return 1; }
serve_bench() {   # $1 label, $2 base url; a different seed per level, so no prompt is seen twice (llama-server caches prompts)
  for c in 1 4 16; do
    out=$(si bench serve --base-url "$2" --num-prompts 32 --input-len 100 --output-len 64 --max-concurrency "$c" --seed "$c" --json | compact)
    echo "JSON {\"server\":\"$1\",\"concurrency\":$c,\"result\":$out}"
  done
}
for port in 8090 8091; do
  if curl -s "http://127.0.0.1:$port/health" >/dev/null 2>&1; then echo "port $port is in use: stop that server first" >&2; exit 1; fi
done
SHARPINFER_NO_BUILD=1 "$root/sharpinfer" serve -m "$model" --port 8090 -t "$threads" --max-num-seqs 16 -c 16384 >/tmp/sharpinfer-serve.log 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
wait_up http://127.0.0.1:8090 && serve_bench sharpinfer http://127.0.0.1:8090
kill $pid; wait $pid 2>/dev/null || true
if [ -n "$llama" ]; then
  "$llama/llama-server" -m "$model" -t "$threads" -np 16 -c 16384 --port 8091 >/tmp/llama-server.log 2>&1 &
  pid=$!
  wait_up http://127.0.0.1:8091 && serve_bench llama-server http://127.0.0.1:8091
  kill $pid; wait $pid 2>/dev/null || true
fi
