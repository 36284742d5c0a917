#!/usr/bin/env bash
# Side-by-side pp/tg on the same model files and thread count: `sharpinfer bench` and any number of llama-bench
# binaries you built yourself outside this repository (nothing of llama.cpp is part of SharpInfer), run
# interleaved for several rounds; prints the median and range per engine and SharpInfer's ratio to each.
#   bench/compare-llamacpp.sh [-t 2] [-R rounds] [-r reps] [-p 512,2048] [-n 128] [-d 0,2048] [-m model ...] \
#       path/to/llama-bench  [name=path/to/llama-bench::extra args] ...
# e.g. bench/compare-llamacpp.sh /x/llama.cpp/build/bin/llama-bench ik=/x/ik_llama.cpp/build/bin/llama-bench \
#        "ik-rtr=/x/ik_llama.cpp/build/bin/llama-bench::-rtr 1"
# Without -m it uses bench/models.sh's four synthetic files (generated on first use). See bench/compare_engines.py.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dotnet build "$root/src/SharpInfer.Cli/SharpInfer.Cli.csproj" -c Release -v q -nologo >/dev/null
exec python3 "$root/bench/compare_engines.py" "$@"
