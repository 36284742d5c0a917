#!/usr/bin/env python3
"""Writes embedding-refs.json: llama.cpp's llama-embedding vectors for synthetic models (see EmbeddingParityTests).

Run from the repository root with a built llama-embedding (outside the repo):
  python3 tests/SharpInfer.Tests/Engine/Data/make_embedding_refs.py /work/ext/llama.cpp .cache/models
The models are synth_gguf.py outputs (preset, f32, seed 1); the test regenerates them and checks their sha256.
"""
import hashlib, json, os, subprocess, sys

llama, models = sys.argv[1], sys.argv[2]
exe = os.path.join(llama, "build", "bin", "llama-embedding")
commit = subprocess.check_output(["git", "-C", llama, "rev-parse", "HEAD"], text=True).strip()
texts = [
    "Hello world",
    "The quick brown fox jumps over the lazy dog.",
    "Embeddings are pooled from the hidden states after the output norm; this sentence is long enough to span "
    "several KV blocks and several prompt chunks when the token budget is small.",
]
cases = []
for preset in ["qwen3-tiny", "llama3-tiny"]:
    path = os.path.join(models, f"{preset}-f32-s1.gguf")
    sha = hashlib.sha256(open(path, "rb").read()).hexdigest()
    for pooling in ["mean", "cls", "last"]:
        cmd = [exe, "-m", path, "--pooling", pooling, "--embd-normalize", "2", "--embd-output-format", "json",
               "-t", "2", "-p", "\n".join(texts)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        data = json.loads(out)["data"]
        assert len(data) == len(texts)
        shown = ["llama-embedding", "-m", f"{preset}-f32-s1.gguf"] + cmd[4:-1] + ["-p", "<texts joined by newlines>"]
        cases.append({"preset": preset, "type": "f32", "seed": 1, "sha256": sha, "pooling": pooling,
                      "command": " ".join(shown), "vectors": [d["embedding"] for d in data]})
json.dump({"llama_cpp_commit": commit, "normalize": 2, "texts": texts, "cases": cases},
          open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "embedding-refs.json"), "w"), indent=1)
