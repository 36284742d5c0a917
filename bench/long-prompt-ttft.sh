#!/usr/bin/env bash
# Serving TTFT on a long-prompt load beside prefill speed, this checkout against another build of SharpInfer's CLI
# (e.g. the commit before a kernel change): does the server's time to first token move by the prefill ratio?
#   bench/long-prompt-ttft.sh path/to/other/SharpInfer.Cli.dll [rounds] [threads]
# Each round, engines in alternating order: `serve`, then `bench serve` with 8 random prompts of 2,000 words
# (≈ 2,000–2,600 tokens), 16 output tokens, 4 in flight, a new seed per round (no prompt seen twice); then
# `bench -p 2048 -n 0 -r 1`. Prints the median over rounds of p50/mean TTFT and pp2048 per engine, and the ratios.
# MODEL=file.gguf picks another model (default: the synthetic qwen3-0.6b q8_0); INPUT_LEN, PROMPTS and PP change the load.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
other="${1:?usage: bench/long-prompt-ttft.sh path/to/other/SharpInfer.Cli.dll [rounds] [threads]}"
rounds="${2:-2}"; threads="${3:-2}"
model="${MODEL:-$("$root/bench/models.sh" qwen3-0.6b:q8_0)}"
dotnet build "$root/src/SharpInfer.Cli/SharpInfer.Cli.csproj" -c Release -v q -nologo >/dev/null
port=8093
if curl -s "http://127.0.0.1:$port/health" >/dev/null 2>&1; then echo "port $port is in use" >&2; exit 1; fi
# exec: a server started in the background is then the very process whose pid $! holds (kill stops the server itself)
engine() { if [ "$1" = this ]; then SHARPINFER_NO_BUILD=1 exec "$root/sharpinfer" "${@:2}"; else exec dotnet "$other" "${@:2}"; fi; }
wait_up() { for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1 && return 0; sleep 1; done; return 1; }
results=$(mktemp)
for r in $(seq 1 "$rounds"); do
  order="this other"; [ $((r % 2)) -eq 0 ] && order="other this"
  for e in $order; do
    engine "$e" serve -m "$model" --port "$port" -t "$threads" -c 4096 --max-num-seqs 4 >/tmp/long-prompt-serve.log 2>&1 &
    pid=$!
    wait_up || { echo "server ($e) did not come up" >&2; kill $pid; exit 1; }
    serve=$(SHARPINFER_NO_BUILD=1 "$root/sharpinfer" bench serve --base-url "http://127.0.0.1:$port" --dataset random \
      --num-prompts "${PROMPTS:-8}" --input-len "${INPUT_LEN:-2000}" --output-len 16 --max-concurrency 4 --seed "$r" --json)
    kill $pid; wait $pid 2>/dev/null || true
    pp=$( engine "$e" bench -m "$model" -t "$threads" -p "${PP:-2048}" -n 0 -r 1 --json)
    python3 - "$e" "$r" "$serve" "$pp" >>"$results" <<'EOF'
import json, sys
e, r, serve, pp = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4]
recs = [json.loads(l) for l in pp.splitlines() if l.strip().startswith("{")] if not pp.strip().startswith("[") else json.loads(pp)
tps = [x["avg_ts"] for x in recs if x.get("n_prompt", 0) > 0][0]
print(json.dumps({"engine": e, "round": int(r), "median_ttft_ms": serve["median_ttft_ms"], "mean_ttft_ms": serve["mean_ttft_ms"],
                  "input_tokens": serve["total_input_tokens"], "failed": serve["failed"], "pp": tps}))
EOF
    tail -1 "$results"
  done
done
python3 - "$results" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
med = {e: {k: statistics.median(x[k] for x in rows if x["engine"] == e) for k in ("median_ttft_ms", "mean_ttft_ms", "pp")} for e in ("this", "other")}
for e, m in med.items():
    print(f"{e:6s} p50 TTFT {m['median_ttft_ms']:9.0f} ms  mean TTFT {m['mean_ttft_ms']:9.0f} ms  pp {m['pp']:7.1f} t/s")
print(f"ratios (other / this): p50 TTFT {med['other']['median_ttft_ms'] / med['this']['median_ttft_ms']:.2f}x, "
      f"mean TTFT {med['other']['mean_ttft_ms'] / med['this']['mean_ttft_ms']:.2f}x; pp (this / other) {med['this']['pp'] / med['other']['pp']:.2f}x")
EOF
rm -f "$results"
