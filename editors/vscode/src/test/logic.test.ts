import { test } from "node:test";
import * as assert from "node:assert/strict";
import { citations, explanationHtml, serverSettings, shiftAfter, statusText } from "../logic";

test("settings map to the server's keys", () => {
  const s = serverSettings({ model: "/m", budget: 300, maxTokens: 20, disabledLanguages: ["go"] });
  assert.deepEqual(s, { patois: { model: "/m", budget: 300, maxTokens: 20, disabledLanguages: ["go"] } });
  assert.deepEqual(serverSettings({}), { patois: {} }, "unset settings leave patois.toml's");
  const cleared = serverSettings({ budget: 200 }, { maxTokens: 48, endpoint: "" });
  assert.deepEqual(cleared, { patois: { budget: 200, maxTokens: 48, endpoint: "", backend: "auto" } });
  const remote = serverSettings({ model: "", budget: 384, maxTokens: 48, disabledLanguages: [], endpoint: "http://box:8000/v1", modelName: "qwen", apiKeyEnv: "KEY" });
  assert.equal(remote.patois.backend, "openai", "an endpoint selects the server backend");
  assert.equal(remote.patois.endpoint, "http://box:8000/v1");
  assert.equal(remote.patois.apiKeyEnv, "KEY");
});

test("the status says where prompts go and what happened with the server", () => {
  const t = statusText({ files: 1, commits: 1, model: null, promptsGoTo: "http://box:8000/v1 (model qwen)", remoteNote: "the inference server at http://box:8000/v1 is unreachable" });
  assert.match(t.tooltip, /prompts go to: http:\/\/box:8000\/v1 \(model qwen\)/);
  assert.match(t.tooltip, /unreachable/);
});

test("status text shows idle training", () => {
  const t = statusText({ files: 1, commits: 1, model: null, training: { state: "finished", steps: 40, baseLoss: 2.35, heldOutLoss: 1.9, replaced: true } });
  assert.match(t.tooltip, /idle training finished: step 40, held-out loss 2\.350 → 1\.900, adapter replaced/);
  const paused = statusText({ files: 1, commits: 1, model: null, training: { state: "paused", steps: 3 } });
  assert.match(paused.tooltip, /idle training paused: step 3$/);
});

test("status text shows the measured speed and the prompt size the budget allows", () => {
  const t = statusText({ files: 1, commits: 1, model: null, speed: { prefill: 90.4, decode: 27.2 }, latencyBudgetMs: 1000, promptWindow: 210, fullPromptWindow: 976 });
  assert.match(t.tooltip, /speed here: 90 prompt tokens\/s, 27 tokens\/s written, budget 1000 ms, prompt 210\/976 tokens/);
  assert.doesNotMatch(statusText({ files: 1, commits: 1, model: null }).tooltip, /speed here/);
});

test("status text reports drift and offers retraining", () => {
  const t = statusText({ files: 3, commits: 2, model: { arch: "qwen2", format: "safetensors" }, drift: { advice: "retrain advised: 40% changed", retrainAdvised: true } });
  assert.match(t.text, /history/);
  assert.equal(t.retrain, true);
  assert.match(t.tooltip, /3 files, 2 commits/);
  const real = statusText({
    files: 1,
    commits: 1,
    model: { path: "/c/qwen.gguf", arch: "qwen2", format: "gguf", backend: "llama.cpp" },
    modelSource: "the installed default model qwen2.5-coder-0.5b",
  });
  assert.match(real.tooltip, /model: qwen\.gguf \(qwen2, gguf, run by llama\.cpp\) — the installed default model/);
  const loading = statusText({
    files: 1,
    commits: 1,
    model: null,
    modelPath: "/c/qwen.gguf",
    modelSource: "the installed default model qwen2.5-coder-0.5b",
  });
  assert.match(loading.tooltip, /model: qwen\.gguf \(loading\) — the installed default model/);
  assert.match(loading.text, /sync~spin/, "a model that is loading is not a warning");
  const none = statusText({ files: 0, commits: 0, model: null, modelError: "no model yet" });
  assert.match(none.tooltip, /no model: no model yet/);
  assert.equal(none.retrain, false);
});

test("citations become clickable links", () => {
  const md = "## `put` (function)\n\n### Callers\n- fill — [src/app.rs:3-6](/repo/src/app.rs#L3)\n\n```rust\nfn fill() {}\n```\n";
  assert.deepEqual(citations(md), [{ path: "/repo/src/app.rs", line: 3 }]);
  const html = explanationHtml(md);
  assert.match(html, /<a href="#" data-path="\/repo\/src\/app.rs" data-line="3">src\/app.rs:3-6<\/a>/);
  assert.match(html, /<pre><code>\nfn fill\(\) \{\}\n<\/code><\/pre>/);
  assert.ok(!html.includes("<script"), "markdown is escaped");
});

test("a next edit applied moves the later ones on its line by what it changed", () => {
  const at = (line: number, from: number, to: number) => ({
    uri: "file:///a.rs", range: { start: { line, character: from }, end: { line, character: to } }, newText: "load_value", reason: "",
  });
  // `fetch_value(a) + fetch_value(b)` on line 3: the first (11 characters) becomes 10 long.
  const [same, other, before] = shiftAfter([at(3, 17, 28), at(4, 17, 28), at(3, 0, 2)], at(3, 0 + 3, 14));
  assert.deepEqual(same.range.start.character, 16);
  assert.deepEqual(same.range.end.character, 27);
  assert.deepEqual(other.range.start.character, 17, "another line stays");
  assert.deepEqual(before.range.start.character, 0, "an edit before it stays");
});
