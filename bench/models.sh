#!/usr/bin/env bash
# Generates the synthetic benchmark models (seed 1, the same bytes as ../shared/golden/models.sha256) into
# .cache/models if they are missing, and prints their paths.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="$root/.cache/models"
mkdir -p "$dir"
for spec in "${@:-qwen3-0.6b:q8_0 llama3.2-1b:q4_0 llama-1.1b-spm:q4_k_m qwen2.5-0.5b:f16}"; do
  for s in $spec; do
    preset="${s%%:*}"; type="${s##*:}"
    out="$dir/$preset-$type-s1.gguf"
    [ -f "$out" ] || python3 "$root/../shared/tools/synth_gguf.py" --preset "$preset" --type "$type" --seed 1 -o "$out" >&2
    echo "$out"
  done
done
