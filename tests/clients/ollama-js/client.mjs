// Runs the npm `ollama` client, unchanged, against a server: node client.mjs BASE_URL MODEL REQUEST_JSON
// REQUEST_JSON holds what to ask: {"greedy": {...options}, "schema": {...}, "toolFormat": {...}, "tools": [...]}.
// Prints one JSON object with what the client returned; the .NET test checks it.
import { Ollama } from 'ollama';

const [base, model, requestJson] = process.argv.slice(2);
const req = JSON.parse(requestJson);
const ollama = new Ollama({ host: base });
const messages = [{ role: 'user', content: 'Once upon a time' }];
const out = {};

const whole = await ollama.chat({ model, messages, options: req.greedy, stream: false });
out.chat = { content: whole.message.content, prompt_eval_count: whole.prompt_eval_count, eval_count: whole.eval_count, done_reason: whole.done_reason };

let text = '';
let parts = 0;
let last = null;
for await (const part of await ollama.chat({ model, messages, options: req.greedy, stream: true })) {
  text += part.message.content;
  parts++;
  last = part;
}
out.stream = { content: text, parts, done: last.done, eval_count: last.eval_count, prompt_eval_count: last.prompt_eval_count };

const structured = await ollama.chat({
  model, messages: [{ role: 'user', content: 'Plan a trip.' }], format: req.schema, options: { seed: 3, num_predict: 120 },
});
out.format = { content: structured.message.content, done_reason: structured.done_reason };

const called = await ollama.chat({
  model, messages: [{ role: 'user', content: 'Weather in Paris?' }], tools: req.tools, format: req.toolFormat,
  options: { temperature: 0, num_predict: 200 },
});
out.tools = { tool_calls: called.message.tool_calls ?? [], content: called.message.content };

try {
  await ollama.chat({ model: 'no-such-model', messages });
  out.error = null;
} catch (e) {
  out.error = { status_code: e.status_code, error: e.error };
}

process.stdout.write(JSON.stringify(out));
