"""Reference renders for ToolTurnRenderTests: Python's Jinja2, configured as Hugging Face transformers (and the
goldens in ../shared/golden/chat) render chat templates, given what llama-server hands the template for an
assistant turn whose `content` is null or missing: `content: ""` (common/chat.cpp, to_json_oaicompat).
Run from the repository root: python3 tests/SharpInfer.Tests/Engine/Data/make_tool_turn_renders.py"""
import json
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

TEMPLATES = ["Qwen-Qwen3-0.6B", "Qwen-Qwen2.5-7B-Instruct", "NousResearch-Hermes-3-Llama-3.1-8B-tool_use",
             "meta-llama-Llama-3.1-8B-Instruct", "meta-llama-Llama-3.2-3B-Instruct"]
TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Get the weather for a city",
          "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
MESSAGES = [
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "content": "", "tool_calls": [{"id": "call_1", "type": "function",
     "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": "{\"temp\": 21}"},
]


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def raise_exception(msg):
    raise Exception(msg)


env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
env.filters["tojson"] = tojson
env.globals["raise_exception"] = raise_exception
env.globals["strftime_now"] = lambda fmt: "22 Nov 2026"
out = {"tools": TOOLS, "messages": MESSAGES, "renders": {}}
for name in TEMPLATES:
    src = open(f"../shared/templates/{name}.jinja").read()
    out["renders"][name] = env.from_string(src).render(messages=MESSAGES, tools=TOOLS, add_generation_prompt=True,
                                                       bos_token="<s>", eos_token="</s>")
with open("tests/SharpInfer.Tests/Engine/Data/tool-turn-renders.json", "w") as f:
    json.dump(out, f, ensure_ascii=False, indent=1)
    f.write("\n")
