#!/usr/bin/env bash
# Runs llama.cpp's own server test suite (tools/server/tests, pytest) offline against llama-server and against
# `sharpinfer serve`, and prints each test's outcome on both plus the headline: of the tests llama-server passes,
# how many SharpInfer passes. Nothing of llama.cpp is part of this repository: point the script at a checkout.
#
#   bench/llamacpp-server-tests.sh [-l LLAMA_CPP_DIR] [-b LLAMA_SERVER] [-s both|llama|sharpinfer]
#                                  [-o OUT_DIR] [-- PYTEST_ARGS...]
#     -l  llama.cpp checkout (default /work/ext/llama.cpp; the suite is in tools/server/tests)
#     -b  llama-server binary (default LLAMA_CPP_DIR/build/bin/llama-server)
#     -s  which servers to run (default both)
#     -o  where the junit reports and logs go (default /tmp/llamacpp-server-tests)
#     PYTEST_ARGS default to: -m "not slow" unit   (e.g. -- -m "not slow" unit/test_tokenize.py -k detokenize)
# The two servers run one after the other: some of the suite's fixtures pin their own port (8082, 8083...), so
# nothing else may listen there. compare.py LLAMA.xml[,RERUN.xml] SHARPINFER.xml[,...] compares reports again.
#
# Models: the suite downloads from Hugging Face; bench/llamacpp-server-tests/server_wrapper.py resolves its
# stories260K references to MODEL_DIR (default ../shared/models) and makes every other model "unavailable
# offline" for both servers alike. The suite's Python deps: pytest, requests, aiohttp, wget, jsonschema, numpy,
# prometheus_client, and openai (put a source tree of it on SUITE_PYTHONPATH if your Python lacks it).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
here="$root/bench/llamacpp-server-tests"
llama_dir=/work/ext/llama.cpp; llama_bin=""; which=both; out=/tmp/llamacpp-server-tests
while getopts "l:b:s:o:" opt; do
  case "$opt" in
    l) llama_dir="$OPTARG" ;; b) llama_bin="$OPTARG" ;; s) which="$OPTARG" ;; o) out="$OPTARG" ;;
    *) sed -n '5,14p' "$0"; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
pytest_args=("$@"); [ ${#pytest_args[@]} -eq 0 ] && pytest_args=(-m "not slow" unit)
llama_bin="${llama_bin:-$llama_dir/build/bin/llama-server}"
tests="$llama_dir/tools/server/tests"
[ -f "$tests/utils.py" ] || { echo "no llama.cpp server tests in $tests" >&2; exit 2; }
python="${PYTHON:-/usr/bin/python3}"
mkdir -p "$out"

export SUITE_MODEL_DIR="${MODEL_DIR:-$(cd "$root/../shared/models" 2>/dev/null && pwd || echo "$root/../shared/models")}"
export SUITE_LLAMA_SERVER="$llama_bin"
export LLAMA_SERVER_BIN_PATH="$here/server_wrapper.py"
export PYTHONPATH="$here${SUITE_PYTHONPATH:+:$SUITE_PYTHONPATH}${PYTHONPATH:+:$PYTHONPATH}"

if [ "$which" != llama ]; then
  dotnet build "$root/src/SharpInfer.Cli/SharpInfer.Cli.csproj" -c Release -v q -nologo >/dev/null
  export SUITE_SHARPINFER_DLL="$root/src/SharpInfer.Cli/bin/Release/net10.0/SharpInfer.Cli.dll"
  export SUITE_SERVE_HELP="$out/serve-help.txt"
  dotnet "$SUITE_SHARPINFER_DLL" serve --help > "$SUITE_SERVE_HELP"
fi

run_suite() { # name port
  echo "running the suite against $1 (log: $out/$1.log)" >&2
  (cd "$tests" && SUITE_SERVER="$1" PORT="$2" "$python" -m pytest -p offline_plugin -p no:cacheprovider -rA \
     --junitxml="$out/$1.xml" "${pytest_args[@]}" > "$out/$1.log" 2>&1) || true
}
rm -f "$out/llama.xml" "$out/sharpinfer.xml"
[ "$which" != sharpinfer ] && run_suite llama 18480
[ "$which" != llama ] && run_suite sharpinfer 18481
"$python" "$here/compare.py" "$out/llama.xml" "$out/sharpinfer.xml" | tee "$out/summary.txt"
