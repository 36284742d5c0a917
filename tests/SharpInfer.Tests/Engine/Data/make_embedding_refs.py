#!/usr/bin/env python3
"""Writes embedding-refs.json: llama.cpp's llama-embedding vectors for synthetic models (see EmbeddingParityTests).

Run from the repository root with a built llama-embedding (outside the repo):
  python3 tests/SharpInfer.Tests/Engine/Data/make_embedding_refs.py /work/ext/llama.cpp .cache/models
The models are synth_gguf.py outputs (preset, f32, seed 1); the test regenerates them and checks their sha256.
The reranker (qwen3-tiny-f32-s1-rank.gguf) is qwen3-tiny with a classification head added by the tests'
RerankerModel.Get(): run the rank test once first so that it exists in .cache/models.
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
# rank: the classification head's outputs (softmax over yes/no for Qwen3), unnormalized, printed raw
path = os.path.join(models, "qwen3-tiny-f32-s1-rank.gguf")
sha = hashlib.sha256(open(path, "rb").read()).hexdigest()
cmd = [exe, "-m", path, "--pooling", "rank", "--embd-normalize", "-1", "--embd-output-format", "raw", "-t", "2", "-p", "\n".join(texts)]
out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
rows = [[float(x) for x in line.split()] for line in out.splitlines() if line.strip()]
assert len(rows) == len(texts)
shown = ["llama-embedding", "-m", "qwen3-tiny-f32-s1-rank.gguf"] + cmd[4:-1] + ["-p", "<texts joined by newlines>"]
cases.append({"preset": "qwen3-tiny-rank", "type": "f32", "seed": 1, "sha256": sha, "pooling": "rank",
              "command": " ".join(shown), "vectors": rows})
json.dump({"llama_cpp_commit": commit, "normalize": 2, "texts": texts, "cases": cases},
          open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "embedding-refs.json"), "w"), indent=1)
