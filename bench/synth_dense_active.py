#!/usr/bin/env python3
"""Writes a dense qwen3 GGUF with the *active* shape of the synthetic qwen3moe-1.6b preset (12 layers, n_embd 1024,
the same attention, an FFN of 8 experts x 512 = 4096 wide, untied output), so a MoE decode speed can be compared with
a dense model that reads the same number of weight bytes per token (issue 15). Uses ../shared/tools/synth_gguf.py.

    python3 bench/synth_dense_active.py --type q4_k_m -o .cache/models/qwen3-dense-active-q4_k_m-s1.gguf
"""
import argparse, os, sys

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(root, '..', 'shared', 'tools'))
import synth_gguf  # noqa: E402

moe = synth_gguf.PRESETS['qwen3moe-1.6b']
dense = {k: v for k, v in moe.items() if k not in ('n_expert', 'n_expert_used', 'n_ff_exp')}
dense.update(arch='qwen3', n_ff=moe['n_expert_used'] * moe['n_ff_exp'])
synth_gguf.PRESETS['qwen3-dense-active'] = dense

ap = argparse.ArgumentParser()
ap.add_argument('--type', default='q4_k_m')
ap.add_argument('--seed', type=int, default=1)
ap.add_argument('-o', '--output', required=True)
a = ap.parse_args()
meta, tensors = synth_gguf.build('qwen3-dense-active', a.type, a.seed)
synth_gguf.write(a.output, meta, tensors)
print(a.output, os.path.getsize(a.output), 'bytes', file=sys.stderr)
