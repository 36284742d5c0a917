#!/usr/bin/env bash
# The prefix-caching benchmarks of docs/benchmarks.md (issue 11), in one sitting on one machine, with llama-server
# beside ours when given the bin folder of a llama.cpp built outside this repository:
#   1. shared prefix: 24 requests, a ~1,200-word shared prefix + ~20 unique words, 32 output tokens, concurrency 4
#      (sharpinfer with and without prefix caching; llama-server -np 4, whose slots reuse their previous prompt);
#   2. multi-turn: 8 conversations × 6 turns over chat completions (each turn resends the history), concurrency 4, in
#      the shape of vLLM's benchmarks/multi_turn/generate_multi_turn.json: a 500-word prefix common to all
#      conversations and 500-1,500 words of each conversation's own context open the first message, then turns of
#      120-160 words with answers of 80-120 tokens; and the same without openings, with 20-word turns and 32-token
#      answers (multi-turn-short, this script's first multi-turn load);
#   3. no shared prefix (random prompts of 256 words): caching on vs off, to show it costs nothing there;
#   4. warm restart: TTFT of a request whose 2,000-word prefix the disk tier holds from before a restart, against a
#      cold server (empty directory).
#   bench/prefix-cache.sh [path/to/llama.cpp/build/bin] [threads]      (MODEL=file.gguf to use another model)
# Output: readable lines, and one JSON line per measurement prefixed with "JSON ".
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
llama="${1:-}"; threads="${2:-2}"
model="${MODEL:-$("$root/bench/models.sh" qwen3-0.6b:q8_0)}"
dotnet build "$root/src/SharpInfer.Cli/SharpInfer.Cli.csproj" -c Release -v q -nologo >/dev/null
si() { SHARPINFER_NO_BUILD=1 "$root/sharpinfer" "$@"; }
compact() { python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)))'; }
port=8095; url="http://127.0.0.1:$port"
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null || true' EXIT
wait_up() { for _ in $(seq 1 300); do curl -sf "$url/health" >/dev/null 2>&1 && return 0; sleep 1; done; echo "server did not come up" >&2; return 1; }
stop() { kill -TERM "$pid"; wait "$pid" 2>/dev/null || true; pid=; }
start_si() {   # the script execs dotnet, so $! is the server itself (a shell function in the background would be a subshell)
  SHARPINFER_NO_BUILD=1 "$root/sharpinfer" serve -m "$model" --port $port -t "$threads" -c 8192 "$@" >/tmp/prefix-bench-server.log 2>&1 &
  pid=$!; wait_up
}
start_llama() { "$llama/llama-server" -m "$model" -t "$threads" -np 4 -c 32768 --port $port >/tmp/prefix-bench-llama.log 2>&1 & pid=$!; wait_up; }
if curl -s "$url/health" >/dev/null 2>&1; then echo "port $port is in use" >&2; exit 1; fi

load() {   # $1 server label, $2 load label, rest: bench serve options
  local label=$1 name=$2; shift 2
  out=$(si bench serve --base-url "$url" --json "$@" | compact)
  echo "JSON {\"server\":\"$label\",\"load\":\"$name\",\"result\":$out}"
  python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print("  {:<20} {:<16} p50 TTFT {:9.1f} ms  output {:6.2f} tok/s  duration {:7.1f} s  hit rate {}  failed {}".format(sys.argv[2], sys.argv[3], r["median_ttft_ms"], r["output_throughput"], r["duration"], r.get("cache_hit_rate"), r["failed"]))' "$out" "$label" "$name"
}
shared=(--dataset shared-prefix --prefix-len 1200 --input-len 20 --output-len 32 --num-prompts 24 --max-concurrency 4 --seed 11)
multi=(--dataset multi-turn --endpoint /v1/chat/completions --num-prompts 8 --turns 6 --prefix-len 500 --conversation-prefix-len 500:1500
       --input-len 120:160 --output-len 80:120 --max-concurrency 4 --seed 12)
multi_short=(--dataset multi-turn --endpoint /v1/chat/completions --num-prompts 8 --turns 6 --input-len 20 --output-len 32 --max-concurrency 4 --seed 12)
plain=(--input-len 256 --output-len 32 --num-prompts 16 --max-concurrency 4 --seed 13)

echo "== model $model, $threads threads"
for cfg in sharpinfer sharpinfer-no-cache llama-server; do
  case $cfg in
    sharpinfer) start_si ;;
    sharpinfer-no-cache) start_si --no-prefix-caching ;;
    llama-server) [ -n "$llama" ] || continue; start_llama ;;
  esac
  load $cfg shared-prefix "${shared[@]}"
  load $cfg multi-turn "${multi[@]}"
  load $cfg multi-turn-short "${multi_short[@]}"
  [ $cfg = llama-server ] || load $cfg no-shared-prefix "${plain[@]}"
  stop
done

echo "== warm restart (disk tier)"
ttft() {   # $1 seed of the unique tail: TTFT in ms of one streamed completion with the 2,000-word prefix
  python3 - "$url" "$1" <<'EOF'
import json, random, sys, time, urllib.request
url, seed = sys.argv[1], int(sys.argv[2])
words = "the of and to in is you that it he was for on are as with his they at be this have from or one had by word but not what all".split()
prefix = " ".join(random.Random(7).choice(words) for _ in range(2000))
tail = " ".join(random.Random(seed).choice(words) for _ in range(20))
body = json.dumps({"prompt": prefix + " " + tail, "max_tokens": 4, "temperature": 0, "stream": True}).encode()
req = urllib.request.Request(url + "/v1/completions", body, {"Content-Type": "application/json"})
t0 = time.perf_counter()
with urllib.request.urlopen(req) as r:
    for line in r:
        if line.startswith(b"data:") and b"[DONE]" not in line and json.loads(line[5:])["choices"][0]["text"]:
            print(f"{(time.perf_counter() - t0) * 1000:.1f}")
            break
EOF
}
dir=$(mktemp -d)
start_si --prefix-cache-dir "$dir"; cold=$(ttft 1); stop           # cold: nothing anywhere; its blocks go to disk at stop
start_si --prefix-cache-dir "$dir"; warm=$(ttft 2); stop           # restarted: the prefix comes from disk
cold2dir=$(mktemp -d)
start_si --prefix-cache-dir "$cold2dir"; cold2=$(ttft 2); stop     # the same request cold, for the ratio
echo "  cold TTFT $cold ms (tail 1), $cold2 ms (tail 2); after restart $warm ms; files $(ls "$dir"/*/ | wc -l), $(du -sh "$dir" | cut -f1)"
echo "JSON {\"load\":\"warm-restart\",\"cold_ttft_ms\":$cold2,\"warm_ttft_ms\":$warm,\"cold_first_ttft_ms\":$cold}"
rm -rf "$dir" "$cold2dir"
