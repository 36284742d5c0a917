#!/usr/bin/env bash
# Side-by-side pp/tg on the same model files and thread count: `sharpinfer bench` and, when given, a llama-bench
# binary you built yourself outside this repository (nothing of llama.cpp is part of SharpInfer).
#   bench/compare-llamacpp.sh [path/to/llama-bench] [threads] [repetitions]
# Prints one markdown row per model and test with both numbers and their ratio.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
llama_bench="${1:-}"; threads="${2:-2}"; reps="${3:-5}"
dotnet build "$root/src/SharpInfer.Cli/SharpInfer.Cli.csproj" -c Release -v q -nologo >/dev/null
echo "| model | test | SharpInfer t/s | llama.cpp t/s | ratio |"
echo "| --- | --- | ---: | ---: | ---: |"
for model in $("$root/bench/models.sh"); do
  ours=$(SHARPINFER_NO_BUILD=1 "$root/sharpinfer" bench -m "$model" -p 512 -n 128 -t "$threads" -r "$reps" --json)
  theirs="[]"
  if [ -n "$llama_bench" ]; then
    theirs=$("$llama_bench" -m "$model" -p 512 -n 128 -t "$threads" -r "$reps" -o json 2>/dev/null)
  fi
  python3 - "$model" "$ours" "$theirs" <<'PY'
import json, os, sys
model, ours, theirs = os.path.basename(sys.argv[1]), json.loads(sys.argv[2]), json.loads(sys.argv[3])
def key(r): return ('pp%d' % r['n_prompt']) if r['n_prompt'] else ('tg%d' % r['n_gen'])
t = {key(r): r for r in theirs}
for r in ours:
    k = key(r); o = r['avg_ts']
    if k in t:
        l = t[k]['avg_ts']
        print(f"| {model} | {k} | {o:.2f} ± {r['stddev_ts']:.2f} | {l:.2f} ± {t[k]['stddev_ts']:.2f} | {o / l:.2f}× |")
    else:
        print(f"| {model} | {k} | {o:.2f} ± {r['stddev_ts']:.2f} | – | – |")
PY
done
