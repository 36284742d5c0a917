#!/usr/bin/env bash
# Quality of the quantization methods (issue 16): perplexity and mean KLD against the f32 model on the second half of
# tinystories-sampled.txt, calibrated on the first half, for each TYPE x method; quantization seconds beside them.
#   bench/quant-quality.sh MODEL.gguf OUTDIR [TYPES] [THREADS]
#   e.g. bench/quant-quality.sh .cache/models/widened-f32.gguf /tmp/qq "Q4_0 Q3_K_M Q2_K" 2
# Methods: llama-quantize plain, llama-imatrix + llama-quantize (when /work/ext/llama.cpp/build/bin has them),
# ours rtn, imatrix, awq, gptq. Env: CAL_CTX (128), CAL_CHUNKS (100), EVAL_CTX (128), EVAL_CHUNKS (60), LLAMA_BIN,
# METHODS (a subset of those six names).
set -euo pipefail
MODEL=$(realpath "$1"); OUT=$2; TYPES=${3:-"Q4_0 Q3_K_M Q2_K"}; T=${4:-2}
CAL_CTX=${CAL_CTX:-128}; CAL_CHUNKS=${CAL_CHUNKS:-100}; EVAL_CTX=${EVAL_CTX:-128}; EVAL_CHUNKS=${EVAL_CHUNKS:-60}
LLAMA_BIN=${LLAMA_BIN:-/work/ext/llama.cpp/build/bin}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CLI=$ROOT/src/SharpInfer.Cli/bin/Release/net10.0/SharpInfer.Cli
DATA=${DATA:-$ROOT/../shared/data/tinystories-sampled.txt}
mkdir -p "$OUT"; cd "$OUT"
python3 - "$DATA" <<'PY'
import sys
t = open(sys.argv[1], encoding='utf-8').read(); h = len(t) // 2
open('cal.txt', 'w', encoding='utf-8').write(t[:h]); open('eval.txt', 'w', encoding='utf-8').write(t[h:])
PY
echo "load: $(uptime)"
[ -f base.kld ] || "$CLI" perplexity -m "$MODEL" -f eval.txt -c "$EVAL_CTX" --chunks "$EVAL_CHUNKS" -t "$T" --kl-divergence-base base.kld > base.log 2>&1
grep "Final estimate" base.log
have_llama=0; [ -x "$LLAMA_BIN/llama-quantize" ] && [ -x "$LLAMA_BIN/llama-imatrix" ] && have_llama=1
if [ $have_llama = 1 ] && [ ! -f llama-imatrix.gguf ]; then
  "$LLAMA_BIN/llama-imatrix" -m "$MODEL" -f cal.txt -o llama-imatrix.gguf -c "$CAL_CTX" --chunks "$CAL_CHUNKS" -t "$T" --no-ppl > llama-imatrix.log 2>&1
fi
secs() { local s=$(date +%s.%N); "$@" > q.log 2>&1 || { cat q.log; exit 1; }; echo "$(date +%s.%N) - $s" | bc; }
printf "| TYPE | method | quantize s | size MiB | PPL(Q) | PPL(Q)/PPL(base) | mean KLD | same top |\n|---|---|---|---|---|---|---|---|\n"
for TYPE in $TYPES; do
  for M in ${METHODS:-llama-plain llama-imatrix rtn imatrix awq gptq}; do
    F=$TYPE-$M.gguf
    if [ -f $F.row ]; then cat $F.row; continue; fi   # measured before: rerun by deleting OUTDIR/$F.row
    case $M in
      llama-plain) [ $have_llama = 1 ] || continue; s=$(secs "$LLAMA_BIN/llama-quantize" "$MODEL" $F $TYPE $T) ;;
      llama-imatrix) [ $have_llama = 1 ] || continue; s=$(secs "$LLAMA_BIN/llama-quantize" --imatrix llama-imatrix.gguf "$MODEL" $F $TYPE $T) ;;
      rtn) s=$(secs "$CLI" quantize "$MODEL" $F $TYPE $T) ;;
      *) s=$(secs "$CLI" quantize --method $M --calibration cal.txt --calibration-ctx "$CAL_CTX" --calibration-chunks "$CAL_CHUNKS" "$MODEL" $F $TYPE $T) ;;
    esac
    "$CLI" perplexity -m $F -c "$EVAL_CTX" --chunks "$EVAL_CHUNKS" -t "$T" --kl-divergence-base base.kld --kl-divergence > $F.ppl 2>&1
    ppl=$(grep "Mean PPL(Q) " $F.ppl | awk '{print $4" ± "$6}'); ratio=$(grep "Mean PPL(Q)/PPL(base)" $F.ppl | awk '{print $4}')
    kld=$(grep "Mean    KLD" $F.ppl | awk '{print $3" ± "$5}'); top=$(grep "Same top p" $F.ppl | awk '{print $4" %"}')
    mib=$(echo "scale=2; $(stat -c %s $F) / 1048576" | bc)
    printf "| %s | %s | %.1f | %s | %s | %s | %s | %s |\n" $TYPE $M $s $mib "$ppl" $ratio "$kld" "$top" | tee $F.row
    rm -f $F   # the quantized file is not needed any more (the 1B ones are large)
  done
done
echo "load: $(uptime)"
