// Pure logic of the extension, testable without VS Code.

/** The settings the user set; an absent one leaves the server's (patois.toml or its default). */
export interface Settings {
  model?: string;
  adapter?: string;
  /** 1: the adapter as trained, 0.5: every update halved; null: its patois.json's, else 1. */
  adapterStrength?: number | null;
  budget?: number;
  maxTokens?: number;
  disabledLanguages?: string[];
  /** An OpenAI-compatible server to generate on; empty: generate locally. */
  endpoint?: string;
  modelName?: string;
  adapterName?: string;
  /** The environment variable holding the server's API key (never the key). */
  apiKeyEnv?: string;
  fallbackToLocal?: boolean;
  /** Train the house adapter while the editor is idle (paused at the next keystroke). */
  trainWhenIdle?: boolean;
  idleSeconds?: number;
  idleTrainingMinutes?: number;
  /** Milliseconds from a request to its first line of ghost text; 0: no limit. */
  latencyBudgetMs?: number;
}

/**
 * The settings the manifest offers, sent to the server under the same names (a test in
 * server/lsp/src/settings.rs checks them against the settings the server declares).
 */
export const SETTING_KEYS: (keyof Settings)[] = [
  "model", "adapter", "adapterStrength", "budget", "maxTokens", "disabledLanguages", "endpoint",
  "modelName", "adapterName", "apiKeyEnv", "fallbackToLocal", "trainWhenIdle", "idleSeconds",
  "idleTrainingMinutes", "latencyBudgetMs",
];

/**
 * The server's initializationOptions / didChangeConfiguration payload. `cleared` holds the
 * settings the user set earlier and has removed since, at their defaults (the manifest's).
 */
export function serverSettings(s: Settings, cleared: Settings = {}): { patois: Record<string, unknown> } {
  const patois: Record<string, unknown> = { ...cleared };
  for (const k of SETTING_KEYS) if (s[k] !== undefined) patois[k] = s[k];
  if (s.endpoint) patois.backend = "openai";
  else if (s.endpoint === "" || cleared.endpoint !== undefined) patois.backend = "auto";
  return { patois };
}

export interface Status {
  files: number;
  commits: number;
  indexing?: boolean;
  model?: { path?: string; arch: string; format: string; backend?: string } | null;
  /** The model in effect, also before it is loaded. */
  modelPath?: string;
  /** Why this model: the settings, the installed default model, or the built-in one. */
  modelSource?: string;
  modelError?: string | null;
  /** Where prompts are sent, and what happened with the inference server. */
  promptsGoTo?: string;
  remoteNote?: string | null;
  drift?: { advice: string; retrainAdvised: boolean } | null;
  /** The model's measured speed (tokens per second) and the prompt size the budget allows. */
  speed?: { prefill: number; decode: number } | null;
  latencyBudgetMs?: number;
  promptWindow?: number | null;
  fullPromptWindow?: number | null;
  /** Idle training (`trainWhenIdle`): the current or last run. */
  training?: { state: string; steps: number; heldOutLoss?: number | null; baseLoss?: number | null; replaced?: boolean | null; message?: string | null } | null;
}

/** One tooltip line for an idle training run. */
export function trainingLine(t: NonNullable<Status["training"]>): string {
  let line = `idle training ${t.state}: step ${t.steps}`;
  if (t.baseLoss != null && t.heldOutLoss != null) {
    line += `, held-out loss ${t.baseLoss.toFixed(3)} → ${t.heldOutLoss.toFixed(3)}`;
  }
  if (t.replaced != null) line += t.replaced ? ", adapter replaced" : ", adapter kept";
  if (t.message) line += ` (${t.message})`;
  return line;
}

/** One tooltip line for the measured speed and the prompt size in effect. */
export function speedLine(s: Status): string {
  if (!s.speed) return "";
  const speed = `${Math.round(s.speed.prefill)} prompt tokens/s, ${Math.round(s.speed.decode)} tokens/s written`;
  const budget = s.latencyBudgetMs ? `, budget ${s.latencyBudgetMs} ms` : "";
  const prompt = s.promptWindow != null ? `, prompt ${s.promptWindow}/${s.fullPromptWindow ?? "?"} tokens` : "";
  return `\nspeed here: ${speed}${budget}${prompt}`;
}

/** Status bar text and tooltip. */
export function statusText(s: Status): { text: string; tooltip: string; retrain: boolean } {
  const loading = !s.model && !s.modelError;
  const icon = s.indexing || loading ? "$(sync~spin)" : s.model ? "$(check)" : "$(warning)";
  const name = s.model?.path ? s.model.path.split(/[\\/]/).pop() + " " : "";
  const runner = s.model?.backend ? `, run by ${s.model.backend}` : "";
  const source = s.modelSource ? ` — ${s.modelSource}` : "";
  const chosen = s.modelPath ? s.modelPath.split(/[\\/]/).pop() : "the model";
  const model = s.model
    ? `${name}(${s.model.arch}, ${s.model.format}${runner})${source}`
    : s.modelError
      ? `no model: ${s.modelError}`
      : `${chosen} (loading)${source}`;
  const drift = s.drift ? `\n${s.drift.advice}` : "";
  const goes = s.promptsGoTo ? `\nprompts go to: ${s.promptsGoTo}` : "";
  const remote = s.remoteNote ? `\n${s.remoteNote}` : "";
  const training = s.training ? `\n${trainingLine(s.training)}` : "";
  const speed = speedLine(s);
  return {
    text: `${icon} patois${s.drift?.retrainAdvised ? " $(history)" : ""}`,
    tooltip: `${s.files} files, ${s.commits} commits indexed\nmodel: ${model}${speed}${goes}${remote}${drift}${training}`,
    retrain: s.drift?.retrainAdvised ?? false,
  };
}

export interface Citation {
  path: string;
  line: number;
}

/** Citation links in the explanation markdown: `[label](abs/path#L12)`. */
export function citations(markdown: string): Citation[] {
  const out: Citation[] = [];
  for (const m of markdown.matchAll(/\]\(([^)#]+)#L(\d+)\)/g)) {
    out.push({ path: m[1], line: Number(m[2]) });
  }
  return out;
}

function escapeHtml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** The explanation as HTML for a webview; citations become links that post `open` messages. */
export function explanationHtml(markdown: string): string {
  const lines = markdown.split("\n");
  const html: string[] = [];
  let inCode = false;
  for (const line of lines) {
    if (line.startsWith("```")) {
      html.push(inCode ? "</code></pre>" : "<pre><code>");
      inCode = !inCode;
      continue;
    }
    if (inCode) {
      html.push(escapeHtml(line));
      continue;
    }
    let l = escapeHtml(line).replace(/\[([^\]]+)\]\(([^)#]+)#L(\d+)\)/g, (_all, label, path, n) =>
      `<a href="#" data-path="${path}" data-line="${n}">${label}</a>`);
    l = l.replace(/`([^`]+)`/g, "<code>$1</code>");
    if (l.startsWith("### ")) html.push(`<h3>${l.slice(4)}</h3>`);
    else if (l.startsWith("## ")) html.push(`<h2>${l.slice(3)}</h2>`);
    else if (l.startsWith("- ")) html.push(`<div>• ${l.slice(2)}</div>`);
    else if (l.trim() !== "") html.push(`<p>${l}</p>`);
  }
  return html.join("\n");
}

/** One suggestion of `patois/nextEdit` (docs/lsp-extensions.md). */
export interface NextEditItem {
  uri: string;
  range: { start: { line: number; character: number }; end: { line: number; character: number } };
  newText: string;
  reason: string;
}

/**
 * `later` after `done` was applied: suggestions on the same line after it move by what it
 * changed there (its ranges were computed on the text before).
 */
export function shiftAfter(later: NextEditItem[], done: NextEditItem): NextEditItem[] {
  const moved = done.newText.length - (done.range.end.character - done.range.start.character);
  return later.map((e) => {
    const s = e.range.start;
    if (e.uri !== done.uri || s.line !== done.range.start.line || s.character < done.range.end.character) return e;
    const end = e.range.end;
    return {
      ...e,
      range: { start: { line: s.line, character: s.character + moved }, end: { line: end.line, character: end.character + moved } },
    };
  });
}
