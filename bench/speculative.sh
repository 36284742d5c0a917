#!/usr/bin/env bash
# Speculative decoding side by side (docs/benchmarks.md, issue 13): single-stream greedy decode of 128 tokens on a
# 1B-class target (stories260K widened by ../shared/tools/widen_gguf.py, q8_0, default noise) with stories260K as the
# draft, plain vs n-gram vs draft model, and llama.cpp's llama-speculative on the same pair when given its bin folder.
# Runs alternate (A B C A B C ...) and the medians are printed, so a drifting machine moves all of them alike.
#   bench/speculative.sh [path/to/llama.cpp/build/bin] [threads] [runs]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
llama="${1:-}"; threads="${2:-2}"; runs="${3:-3}"
shared="$root/../shared"
target="${TARGET:-$root/.cache/models/widened-q8_0.gguf}"
draft="$shared/models/stories260K.gguf"
[ -f "$target" ] || python3 "$shared/tools/widen_gguf.py" -o "$target" >/dev/null
dotnet build "$root/src/SharpInfer.Cli/SharpInfer.Cli.csproj" -c Release -v q -nologo >/dev/null
prompt="Once upon a time, there was a little girl named Lily."
si() {   # prints "tok/s draft_n accepted"
  SHARPINFER_NO_BUILD=1 "$root/sharpinfer" run -m "$target" -p "$prompt" -n 128 --temp 0 -t "$threads" --json "$@" 2>/dev/null |
    python3 -c 'import json,sys; t=json.load(sys.stdin)["timings"]; print(t["predicted_per_second"], t.get("draft_n", 0), t.get("draft_n_accepted", 0))'
}
lspec() {
  "$llama/llama-speculative" -m "$target" -md "$draft" -p "$prompt" -n 128 --temp 0 -t "$threads" -td "$threads" --spec-draft-n-max 8 2>&1 |
    python3 -c 'import re,sys; s=sys.stdin.read(); print(re.search(r"decoded.*speed:\s*([\d.]+)", s).group(1), re.search(r"n_drafted\s*=\s*(\d+)", s).group(1), re.search(r"n_accept\s*=\s*(\d+)", s).group(1))'
}
declare -A all
for i in $(seq 1 "$runs"); do
  all[plain]+="$(si)"$'\n'
  all[ngram]+="$(si --draft-max 5)"$'\n'
  all[draft]+="$(si -md "$draft" --draft-max 5)"$'\n'
  [ -n "$llama" ] && all[llama-speculative]+="$(lspec)"$'\n'
done
for k in plain ngram draft llama-speculative; do
  [ -n "${all[$k]:-}" ] || continue
  printf '%s' "${all[$k]}" | python3 -c 'import statistics,sys
rows=[l.split() for l in sys.stdin if l.strip()]
v=sorted(float(r[0]) for r in rows); d=int(rows[0][1]); a=int(rows[0][2])
print(f"  {sys.argv[1]:<18} median {statistics.median(v):7.2f} tok/s  (runs {v})  drafted {d}, accepted {a}" + (f" ({a/d:.0%})" if d else ""))
print("JSON " + __import__("json").dumps({"config": sys.argv[1], "median_tok_s": statistics.median(v), "runs": v, "drafted": d, "accepted": a}))' "$k"
done
