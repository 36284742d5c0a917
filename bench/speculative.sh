#!/usr/bin/env bash
# Speculative decoding side by side (docs/benchmarks.md, issue 13), on a 1B-class target (stories260K widened by
# ../shared/tools/widen_gguf.py, q8_0, default noise) with stories260K as the draft. Sections (SECTIONS, default all):
#   single   single-stream greedy decode of 128 tokens: plain vs n-gram vs draft model (vs llama.cpp's
#            llama-speculative on the same pair when given its bin folder)
#   repeat   n-gram proposals where the output repeats the prompt: bench/speculative-repeat-prompt.txt is a story
#            the target wrote, followed by its first sentence again, so the greedy continuation retells it
#   sampled  the draft model at temperature 1 (the draft draws from its own distribution; seeded, --ignore-eos)
#   streams  16 concurrent streams through `serve` + `bench serve` (32 prompt words, 64 tokens each): output tok/s with
#            the draft model vs without (speculation backs off while more than 4 sequences decode)
# Runs alternate (A B A B ...) and the medians are printed, so a drifting machine moves all of them alike.
#   [SECTIONS="repeat sampled"] bench/speculative.sh [path/to/llama.cpp/build/bin] [threads] [runs]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
llama="${1:-}"; threads="${2:-2}"; runs="${3:-3}"
sections="${SECTIONS:-single repeat sampled streams}"
shared="$root/../shared"
target="${TARGET:-$root/.cache/models/widened-q8_0.gguf}"
draft="$shared/models/stories260K.gguf"
[ -f "$target" ] || python3 "$shared/tools/widen_gguf.py" -o "$target" >/dev/null
dotnet build "$root/src/SharpInfer.Cli/SharpInfer.Cli.csproj" -c Release -v q -nologo >/dev/null
prompt="Once upon a time, there was a little girl named Lily."
si() {   # prints "tok/s draft_n accepted"
  SHARPINFER_NO_BUILD=1 "$root/sharpinfer" run -m "$target" -n 128 -t "$threads" --json "$@" 2>/dev/null |
    python3 -c 'import json,sys; t=json.load(sys.stdin)["timings"]; print(t["predicted_per_second"], t.get("draft_n", 0), t.get("draft_n_accepted", 0))'
}
lspec() {
  "$llama/llama-speculative" -m "$target" -md "$draft" -p "$prompt" -n 128 --temp 0 -t "$threads" -td "$threads" --spec-draft-n-max 8 2>&1 |
    python3 -c 'import re,sys; s=sys.stdin.read(); print(re.search(r"decoded.*speed:\s*([\d.]+)", s).group(1), re.search(r"n_drafted\s*=\s*(\d+)", s).group(1), re.search(r"n_accept\s*=\s*(\d+)", s).group(1))'
}
streams() {   # prints "output tok/s draft_n accepted" of 16 concurrent streams against a fresh server
  local port=$((18000 + RANDOM % 1000)) pid out
  SHARPINFER_NO_BUILD=1 "$root/sharpinfer" serve -m "$target" --port "$port" -t "$threads" --max-num-seqs 16 --kv-cache-memory 512MiB "$@" \
    >/dev/null 2>&1 & pid=$!
  for _ in $(seq 600); do curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break; sleep 0.5; done
  out=$(SHARPINFER_NO_BUILD=1 "$root/sharpinfer" bench serve --base-url "http://127.0.0.1:$port" --num-prompts 16 --max-concurrency 16 \
        --input-len 32 --output-len 64 --json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["output_throughput"])')
  local metrics; metrics=$(curl -sf "http://127.0.0.1:$port/metrics" || true)
  kill "$pid"; wait "$pid" 2>/dev/null || true
  printf '%s %s %s\n' "$out" \
    "$(grep -E '^sharpinfer:spec_decode_num_draft_tokens_total' <<<"$metrics" | awk '{print int($2)}' || echo 0)" \
    "$(grep -E '^sharpinfer:spec_decode_num_accepted_tokens_total' <<<"$metrics" | awk '{print int($2)}' || echo 0)"
}
has() { [[ " $sections " == *" $1 "* ]]; }
declare -A all
order=()
add() { [[ -n "${all[$1]:-}" ]] || order+=("$1"); all[$1]+="$2"$'\n'; }
repeat_prompt="$(cat "$root/bench/speculative-repeat-prompt.txt")"
for i in $(seq 1 "$runs"); do
  if has single; then
    add plain "$(si -p "$prompt" --temp 0)"
    add ngram "$(si -p "$prompt" --temp 0 --draft-max 5)"
    add draft "$(si -p "$prompt" --temp 0 -md "$draft" --draft-max 5)"
    [ -n "$llama" ] && add llama-speculative "$(lspec)"
  fi
  if has repeat; then
    add repeat-plain "$(si -p "$repeat_prompt" --temp 0)"
    add repeat-ngram "$(si -p "$repeat_prompt" --temp 0 --draft-max 5)"
  fi
  if has sampled; then
    add sampled-plain "$(si -p "$prompt" --temp 1 --seed "$i" --ignore-eos)"
    add sampled-draft "$(si -p "$prompt" --temp 1 --seed "$i" --ignore-eos -md "$draft" --draft-max 5)"
  fi
  if has streams; then
    add streams16-plain "$(streams)"
    add streams16-draft "$(streams -md "$draft" --draft-max 5)"
  fi
done
for k in "${order[@]}"; do
  printf '%s' "${all[$k]}" | python3 -c 'import statistics,sys
rows=[l.split() for l in sys.stdin if l.strip()]
v=sorted(float(r[0]) for r in rows); d=sum(int(r[1]) for r in rows); a=sum(int(r[2]) for r in rows)
print(f"  {sys.argv[1]:<18} median {statistics.median(v):7.2f} tok/s  (runs {v})  drafted {d}, accepted {a} over the runs" + (f" ({a/d:.0%})" if d else ""))
print("JSON " + __import__("json").dumps({"config": sys.argv[1], "median_tok_s": statistics.median(v), "runs": v, "drafted": d, "accepted": a}))' "$k"
done
