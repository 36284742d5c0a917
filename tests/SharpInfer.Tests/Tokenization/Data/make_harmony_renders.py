"""Reference renders for HarmonyTemplateTests: gpt-oss's harmony chat template (the one inside the synthetic
gpt-oss GGUF, read here from ../shared/templates/openai-gpt-oss-120b.jinja, the same text) rendered by Python's
Jinja2 configured as Hugging Face transformers (and the goldens in ../shared/golden/chat) render chat templates.
The cases cover what the shared goldens do not: the template's kwargs (reasoning_effort, model_identity,
builtin_tools), the developer role, thinking fields, the TypeScript rendering of tool schemas, string arguments,
and the template's raise_exception paths.
Run from the repository root: python3 tests/SharpInfer.Tests/Tokenization/Data/make_harmony_renders.py"""
import json
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def raise_exception(msg):
    raise Exception(msg)


WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Get the weather for a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "City name"}},
                          "required": ["city"]}}}
SCHEMAS = {"type": "function", "function": {"name": "search_items", "description": "Search the catalogue",
    "parameters": {"type": "object", "required": ["query", "sort"], "properties": {
        "query": {"type": "string", "description": "Free text"},
        "sort": {"type": "string", "enum": ["price", "date", "name"], "default": "date"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "ids": {"type": "array", "items": {"type": "integer"}, "nullable": True},
        "weights": {"type": "array", "items": {"type": "number"}},
        "flags": {"type": "array", "items": {"type": "boolean"}},
        "points": {"type": "array", "items": {"type": "object", "properties": {"x": {"type": "number"}, "y": {"type": "number"}}, "required": ["x"]}},
        "anything": {"type": "array"},
        "limit": {"type": "integer", "default": 10},
        "ratio": {"type": "number", "default": 0.5},
        "exact": {"type": "boolean", "default": False},
        "note": {"type": "string", "nullable": True},
        "mixed": {"type": ["string", "number"]},
        "single": {"type": ["boolean"]},
        "choice": {"oneOf": [{"type": "string", "description": "a name"}, {"type": "integer", "default": 3}]},
        "shape": {"oneOf": [{"type": "object"}, {"type": "object", "properties": {"r": {"type": "number"}}}], "default": "circle"},
        "filter": {"type": "object", "properties": {"min": {"type": "number"}, "max": {"type": "number"}, "unit": {"type": "string", "enum": ["eur", "usd"]}}, "required": ["min"]},
        "opaque": {"type": "object"},
        "untyped": {"description": "no type at all"},
        "unicode": {"type": "string", "default": "café ☕"},
    }}}}
NO_PARAMS = {"type": "function", "function": {"name": "now", "description": "Current time", "parameters": {"type": "object", "properties": {}}}}
CALL = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}

CASES = [
    ("kwargs_and_developer", dict(messages=[{"role": "developer", "content": "Answer in French."}, {"role": "user", "content": "Hi"}],
                                  reasoning_effort="high", model_identity="You are a test model.")),
    ("reasoning_low_no_system", dict(messages=[{"role": "user", "content": "Hi"}], reasoning_effort="low")),
    ("builtin_tools_both", dict(messages=[{"role": "user", "content": "Look it up"}], builtin_tools=["browser", "python"], tools=[WEATHER])),
    ("builtin_tools_python_only", dict(messages=[{"role": "user", "content": "Compute"}], builtin_tools=["python"])),
    ("tool_schemas", dict(messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Find shoes"}], tools=[SCHEMAS, NO_PARAMS, WEATHER])),
    ("training_last_turn", dict(messages=[{"role": "user", "content": "2+2?"},
                                          {"role": "assistant", "thinking": "Simple sum.", "content": "4"}], add_generation_prompt=False)),
    ("earlier_thinking_dropped", dict(messages=[{"role": "user", "content": "2+2?"}, {"role": "assistant", "thinking": "Sum.", "content": "4"},
                                                {"role": "user", "content": "3+3?"}])),
    ("tool_call_with_analysis", dict(messages=[{"role": "user", "content": "Weather?"},
                                               {"role": "assistant", "content": "I should call the tool.", "tool_calls": [CALL]},
                                               {"role": "tool", "content": "{\"temp\": 21, \"sky\": \"clair \\\"ensoleillé\\\"\"}"}], tools=[WEATHER])),
    ("tool_call_thinking_then_final", dict(messages=[{"role": "user", "content": "Weather?"},
                                                     {"role": "assistant", "thinking": "Need the tool.", "tool_calls": [CALL]},
                                                     {"role": "tool", "content": "21C"},
                                                     {"role": "assistant", "content": "It is 21C."},
                                                     {"role": "user", "content": "Thanks"}], tools=[WEATHER])),
    ("string_arguments_and_content_type", dict(messages=[{"role": "user", "content": "Weather?"},
        {"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Zürich\"}", "content_type": "<|constrain|>json"}}]},
        {"role": "tool", "content": "cold"}], tools=[WEATHER])),
    ("error_channel_in_content", dict(messages=[{"role": "user", "content": "x"}, {"role": "assistant", "content": "<|channel|>final<|message|>y"}])),
    ("error_channel_in_thinking", dict(messages=[{"role": "user", "content": "x"}, {"role": "assistant", "thinking": "<|channel|>analysis<|message|>t", "content": "y"}])),
    ("error_tool_without_call", dict(messages=[{"role": "user", "content": "x"}, {"role": "tool", "content": "y"}])),
    ("error_content_and_thinking_with_call", dict(messages=[{"role": "user", "content": "x"},
                                                            {"role": "assistant", "content": "a", "thinking": "b", "tool_calls": [CALL]}], tools=[WEATHER])),
]

env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
env.filters["tojson"] = tojson
env.globals["raise_exception"] = raise_exception
env.globals["strftime_now"] = lambda fmt: "22 Nov 2026"
template = env.from_string(open("../shared/templates/openai-gpt-oss-120b.jinja").read())
out = []
for name, args in CASES:
    args = {"bos_token": "<|startoftext|>", "eos_token": "<|return|>", "add_generation_prompt": True, **args}
    case = {"case": name, "args": args}
    try:
        case["rendered"] = template.render(**args)
    except Exception as e:
        case["error"] = str(e)
    out.append(case)
with open("tests/SharpInfer.Tests/Tokenization/Data/harmony-renders.json", "w") as f:
    json.dump(out, f, ensure_ascii=False, indent=1)
    f.write("\n")
