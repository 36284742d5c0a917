#!/usr/bin/python3
"""Stands in for llama-server when llama.cpp's server test suite starts it (LLAMA_SERVER_BIN_PATH).

The suite downloads its models from Hugging Face; offline, this wrapper resolves those references to local files
and exits with code 3 (MODEL_UNAVAILABLE) when a test asks for a model we do not have, so the pytest plugin can
mark that test "model unavailable offline" for both servers alike.

SUITE_SERVER=llama      runs the real llama-server (SUITE_LLAMA_SERVER) with the model references replaced by -m.
SUITE_SERVER=sharpinfer maps llama-server's flags onto `sharpinfer serve` (SUITE_SHARPINFER_DLL): the ones with a
                        different name are renamed, the ones serve lists in its --help pass through, the rest are
                        dropped (each drop is printed, so a failing test's log shows what was not honoured).
"""
import os
import sys

MODEL_UNAVAILABLE = 3

# llama-server flags the suite passes that take a value (all others it passes are switches).
VALUED = {
    "--host", "--port", "--temp", "--seed", "--model", "-m", "--model-url", "-mu", "--model-draft", "-md",
    "--hf-repo", "-hf", "-hfr", "--hf-file", "-hff", "--models-dir", "--models-max", "--models-preset",
    "--cors-origins", "--batch-size", "-b", "--ubatch-size", "-ub", "--threads", "-t", "--n-gpu-layers", "-ngl",
    "--pooling", "--alias", "-a", "--tags", "--ctx-size", "-c", "--parallel", "-np", "-ctk", "--cache-type-k",
    "-ctv", "--cache-type-v", "-fa", "--flash-attn", "--n-predict", "-n", "--slot-save-path", "--grp-attn-n",
    "--grp-attn-w", "--lora", "--spec-type", "--api-key", "--spec-draft-n-max", "--spec-draft-n-min",
    "--reasoning-format", "--reasoning", "--chat-template", "--chat-template-file", "--mmproj-url", "--media-path",
    "--sleep-idle-seconds", "--cache-ram", "--tools", "--mcp-servers-config", "--mcp-servers-json",
}
ALIASES = {"-m": "--model", "-mu": "--model-url", "-hf": "--hf-repo", "-hfr": "--hf-repo", "-hff": "--hf-file",
           "-b": "--batch-size", "-ub": "--ubatch-size", "-t": "--threads", "-ngl": "--n-gpu-layers",
           "-a": "--alias", "-c": "--ctx-size", "-np": "--parallel", "-n": "--n-predict",
           "--cache-type-k": "-ctk", "--cache-type-v": "-ctv", "--flash-attn": "-fa", "-md": "--model-draft"}


def parse(argv):
    """llama-server's command line as an ordered list of (flag, value or None)."""
    out, i = [], 0
    while i < len(argv):
        flag = argv[i]
        if flag in VALUED and i + 1 < len(argv):
            out.append((ALIASES.get(flag, flag), argv[i + 1]))
            i += 2
        else:
            out.append((ALIASES.get(flag, flag), None))
            i += 1
    return out


def local_model(opts, model_dir):
    """The local file for the suite's model reference, '' when it names none, None when it is unavailable."""
    repo = opts.get("--hf-repo")
    file = opts.get("--hf-file")
    url = opts.get("--model-url")
    path = opts.get("--model")
    known = {
        ("ggml-org/models", "tinyllamas/stories260K.gguf"): "stories260K.gguf",
        ("ggml-org/test-model-stories260K", None): "stories260K.gguf",
    }
    if path:
        return path if os.path.exists(path) else None
    if repo:
        name = known.get((repo, file))
        return os.path.join(model_dir, name) if name and os.path.exists(os.path.join(model_dir, name)) else None
    if url:
        name = url.rsplit("/", 1)[-1]
        return os.path.join(model_dir, name) if os.path.exists(os.path.join(model_dir, name)) else None
    return ""


def unavailable(opts):
    what = opts.get("--hf-repo") or opts.get("--model-url") or opts.get("--model")
    if opts.get("--hf-file"):
        what += "/" + opts["--hf-file"]
    print(f"suite wrapper: model {what} is not available offline", file=sys.stderr, flush=True)
    sys.exit(MODEL_UNAVAILABLE)


def run_llama(args, model):
    out = [os.environ["SUITE_LLAMA_SERVER"]]
    for flag, value in args:
        if flag in ("--hf-repo", "--hf-file", "--model-url", "--model"):
            continue
        out += [flag] if value is None else [flag, value]
    if model:
        out += ["--model", model]
    os.execv(out[0], out)


def serve_flags():
    """The long and short flags `sharpinfer serve --help` lists (captured once by the run script)."""
    help_file = os.environ.get("SUITE_SERVE_HELP")
    text = open(help_file).read() if help_file and os.path.exists(help_file) else ""
    flags = set()
    for word in text.replace(",", " ").split():
        if word.startswith("-") and len(word) > 1:
            flags.add(word.split("=")[0].split("<")[0])
    return flags


def run_sharpinfer(args, model):
    opts = dict(args)
    supported = serve_flags()
    out = ["dotnet", os.environ["SUITE_SHARPINFER_DLL"], "serve"]
    dropped = []
    handled = {"--hf-repo", "--hf-file", "--model-url", "--model", "--ctx-size", "--parallel", "--kv-unified"}
    # llama-server splits --ctx-size evenly over --parallel slots unless --kv-unified; each of our sequences may
    # hold max-model-len tokens, so the per-slot size is what maps.
    parallel = int(opts.get("--parallel") or 1)
    if "--ctx-size" in opts:
        ctx = int(opts["--ctx-size"])
        per_slot = ctx if "--kv-unified" in opts else max(1, ctx // max(1, parallel))
        out += ["--max-model-len", str(per_slot)]
    if "--parallel" in opts:
        out += ["--max-num-seqs", str(parallel)]
    # llama-server answers every origin's CORS requests unless --cors-origins narrows it; serve's CORS is off
    # unless asked, so the wrapper asks for llama-server's default. With server tools or MCP servers both default to
    # localhost origins only, so then nothing is added.
    tools_on = any(f in opts for f in ("--tools", "--mcp-servers-json", "--mcp-servers-config"))
    if "--cors-origins" not in opts and "--cors-origins" in supported and not tools_on:
        out += ["--cors-origins", "*"]
    # llama-server ignores the request's model name (one model served); serve 404s another name unless asked
    if "--any-model-name" in supported:
        out += ["--any-model-name"]
    # llama-server samples the OpenAI routes with its own defaults (--temp, top_k 40, ...) and llama.cpp's chain;
    # serve keeps vLLM's unless asked
    if "--sampling-defaults" in supported:
        out += ["--sampling-defaults", "llama-server"]
    renames = {"--alias": "--served-model-name"}
    for flag, value in args:
        if flag in handled:
            continue
        target = flag if flag in supported else renames.get(flag)
        if target is None or target not in supported:
            dropped.append(flag if value is None else f"{flag} {value}")
            continue
        out += [target] if value is None else [target, value]
    if model:
        out += ["--model", model]
    elif model == "":
        # no model named: llama-server starts in router mode (models loaded on demand); serve has no router mode,
        # so it serves the suite's default model and the router-only tests fail on what they check
        out += ["--model", os.path.join(os.environ["SUITE_MODEL_DIR"], "stories260K.gguf")]
    if dropped:
        print("suite wrapper: flags serve does not take, dropped: " + " ".join(dropped), file=sys.stderr, flush=True)
    print("suite wrapper: " + " ".join(out), file=sys.stderr, flush=True)
    os.execvp(out[0], out)


def main():
    args = parse(sys.argv[1:])
    opts = dict(args)
    model = local_model(opts, os.environ["SUITE_MODEL_DIR"])
    if model is None:
        unavailable(opts)
    if os.environ.get("SUITE_SERVER") == "llama":
        run_llama(args, model)
    else:
        run_sharpinfer(args, model)


if __name__ == "__main__":
    main()
