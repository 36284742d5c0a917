#!/usr/bin/env python3
"""Side-by-side pp/tg of `sharpinfer bench` and any number of llama-bench binaries (llama.cpp, ik_llama.cpp, ...)
built outside this repository, on the same model files and thread count.

The engines run interleaved: every round runs each engine once on each model, and the order of the engines
rotates from round to round, so a slow minute of a shared machine lands on every engine rather than on one.
Each engine's number for a test is the median over the rounds; the range (min-max) is printed beside it, and
the ratio columns divide SharpInfer's median by each other engine's.

Engines are given as  PATH  or  NAME=PATH  or  NAME=PATH::EXTRA ARGS  (extra llama-bench arguments, e.g.
"ik-rtr=/x/ik_llama.cpp/build/bin/llama-bench::-rtr 1"); a PATH ending in .dll is another build of SharpInfer's CLI
(e.g. "prev=/tmp/prev/SharpInfer.Cli.dll", the previous commit). Called by bench/compare-llamacpp.sh.
"""
import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse_engine(spec):
    name, _, rest = spec.partition("=") if "=" in spec.split("::")[0] else ("", "", spec)
    path, _, extra = rest.partition("::")
    if not name:
        # .../ik_llama.cpp/build/bin/llama-bench -> ik_llama.cpp
        parts = os.path.normpath(path).split(os.sep)
        name = parts[-4] if len(parts) >= 4 and parts[-3] == "build" else os.path.basename(path)
    return name, path, shlex.split(extra)


def test_key(rec):
    depth = rec.get("n_depth", 0) or 0
    base = f"pp{rec['n_prompt']}" if rec["n_prompt"] else f"tg{rec['n_gen']}"
    return base + (f" @ d{depth}" if depth else "")


def run_engine(engine, model, args):
    name, path, extra = engine
    common = ["-m", model, "-t", str(args.threads), "-r", str(args.reps)]
    common += ["-p", ",".join(map(str, args.p)), "-n", ",".join(map(str, args.n))]
    if args.d:
        common += ["-d", ",".join(map(str, args.d))]
    if path is None or path.endswith(".dll"):
        # this checkout's sharpinfer, or another build of it (NAME=path/to/SharpInfer.Cli.dll, e.g. the previous commit)
        exe = [os.path.join(ROOT, "sharpinfer")] if path is None else ["dotnet", path]
        cmd = [*exe, "bench", "-m", model, "-t", str(args.threads), "-r", str(args.reps),
               "-p", *map(str, args.p), "-n", *map(str, args.n), "--json"]
        if args.d:
            cmd += ["-d", *map(str, args.d)]
        cmd += extra
        env = dict(os.environ, SHARPINFER_NO_BUILD="1")
    else:
        cmd = [path, *common, "-o", "json", *extra]
        env = os.environ
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0 and path is not None and not path.endswith(".dll") and args.d and 0 in args.d:
        # a llama-bench without -d (ik_llama.cpp's: use its llama-sweep-bench for depth) still gives the depth-0 rows
        plain = list(cmd)
        i = plain.index("-d")
        del plain[i:i + 2]
        out = subprocess.run(plain, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        print(f"warning: {name} failed on {os.path.basename(model)} (exit {out.returncode}): "
              f"{out.stderr.strip().splitlines()[-1:] or ''}", file=sys.stderr)
        return {}
    try:
        records = json.loads(out.stdout)
    except json.JSONDecodeError:
        print(f"warning: {name} printed no JSON on {os.path.basename(model)}", file=sys.stderr)
        return {}
    return {test_key(r): r["avg_ts"] for r in records}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("engines", nargs="*", help="llama-bench binaries: PATH, NAME=PATH or NAME=PATH::EXTRA ARGS")
    ap.add_argument("-m", "--model", action="append", help="model file (repeatable); default: bench/models.sh's four")
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("-R", "--rounds", type=int, default=3, help="interleaved rounds (each engine once per model per round)")
    ap.add_argument("-r", "--reps", type=int, default=3, help="llama-bench -r inside each round")
    ints = lambda v: [int(x) for x in v.split(",")]  # noqa: E731  (comma lists, as llama-bench takes them)
    ap.add_argument("-p", type=ints, default=[512], help="prompt lengths, e.g. 512,2048 (0 skips pp)")
    ap.add_argument("-n", type=ints, default=[128], help="generation lengths, e.g. 128 (0 skips tg)")
    ap.add_argument("-d", type=ints, default=[], help="depths, e.g. 0,2048 (llama-bench -d; an engine without it gets only the depth-0 rows)")
    ap.add_argument("--ours-args", default="", help="extra arguments for sharpinfer bench")
    args = ap.parse_args()
    if args.rounds < 1 or args.reps < 1:
        ap.error("--rounds and --reps must be at least 1")

    models = args.model or subprocess.run([os.path.join(ROOT, "bench", "models.sh")], capture_output=True, text=True,
                                          check=True).stdout.split()
    engines = [("SharpInfer", None, shlex.split(args.ours_args))] + [parse_engine(e) for e in args.engines]
    names = [e[0] for e in engines]
    if len(set(names)) != len(names):
        ap.error(f"engine names must differ: {names} (use NAME=PATH)")

    # samples[model][test][engine] = [t/s per round]
    samples = {m: {} for m in models}
    for rnd in range(args.rounds):
        order = engines[rnd % len(engines):] + engines[:rnd % len(engines)]
        for model in models:
            for engine in order:
                for test, ts in run_engine(engine, model, args).items():
                    samples[model].setdefault(test, {}).setdefault(engine[0], []).append(ts)
                print(f"round {rnd + 1}/{args.rounds} {os.path.basename(model)} {engine[0]} done", file=sys.stderr)

    def cell(xs):
        if not xs:
            return "–"
        return f"{statistics.median(xs):.1f} ({min(xs):.1f}–{max(xs):.1f})"

    others = names[1:]
    print(f"{args.rounds} interleaved rounds, -r {args.reps} each, {args.threads} threads; median (min–max) t/s")
    print()
    print("| model | test | " + " | ".join(names) + "".join(f" | ×{o}" for o in others) + " |")
    print("| --- | --- |" + " ---: |" * (len(names) + len(others)))
    for model in models:
        for test, per in samples[model].items():
            row = [cell(per.get(n, [])) for n in names]
            ours = per.get(names[0])
            for o in others:
                theirs = per.get(o)
                row.append(f"{statistics.median(ours) / statistics.median(theirs):.2f}×" if ours and theirs else "–")
            print(f"| {os.path.basename(model)} | {test} | " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
