import * as vscode from "vscode";
import { LanguageClient, LanguageClientOptions, ProgressType, ServerOptions } from "vscode-languageclient/node";
import { explanationHtml, serverSettings, SETTING_KEYS, Settings, Status, statusText } from "./logic";
import { NextEdits } from "./nextEdit";

let client: LanguageClient | undefined;
/** The server's command behind its code action; the language client registers it. */
const EXPLAIN_COMMAND = "patois.explain";
/** How long the cursor rests before the server is told to prepare a completion there. */
const CURSOR_REST_MS = 300;

/** The patois settings the user set (user, workspace or folder): the rest is patois.toml's. */
function settings(): Settings {
  const c = vscode.workspace.getConfiguration("patois");
  const s: Record<string, unknown> = {};
  for (const k of SETTING_KEYS) {
    const i = c.inspect(k);
    const v = i?.workspaceFolderValue ?? i?.workspaceValue ?? i?.globalValue;
    if (v !== undefined) s[k] = v;
  }
  return s as Settings;
}

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const exe = vscode.workspace.getConfiguration("patois").get("path", "patois");
  const serverOptions: ServerOptions = { command: exe, args: ["serve"] };
  let sent = settings();
  const clientOptions: LanguageClientOptions = {
    documentSelector: [{ scheme: "file" }],
    initializationOptions: serverSettings(sent),
    middleware: {
      // The server's "Explain with patois" code action runs `patois.explain` (uri, range);
      // the client registers that command for the server, so it is answered here with the
      // panel rather than by the server's generic path (a markdown file shown as a document).
      executeCommand: async (command, args, next) =>
        command === EXPLAIN_COMMAND ? explain(args[0], args[1]) : next(command, args),
    },
  };
  client = new LanguageClient("patois", "patois", serverOptions, clientOptions);
  // Inline completion is an LSP 3.18 feature: enable the client's support for it.
  client.registerProposedFeatures();

  // Where the cursor rests, the server prefills the prompt of a completion there.
  let resting: ReturnType<typeof setTimeout> | undefined;
  context.subscriptions.push(
    vscode.window.onDidChangeTextEditorSelection((e) => {
      clearTimeout(resting);
      const doc = e.textEditor.document;
      if (doc.uri.scheme !== "file" || e.selections.length !== 1) return;
      const position = e.selections[0].active;
      resting = setTimeout(() => {
        client?.sendNotification("patois/cursor", { textDocument: { uri: doc.uri.toString() }, position });
      }, CURSOR_REST_MS);
    }),
  );

  const bar = vscode.window.createStatusBarItem(vscode.StatusBarAlignment.Right, 100);
  bar.text = "$(sync~spin) patois";
  bar.command = "patois.showStatus";
  bar.show();
  context.subscriptions.push(bar);

  let last: Status | undefined;
  const show = (s: Status) => {
    last = s;
    const t = statusText(s);
    bar.text = t.text;
    bar.tooltip = t.tooltip;
    bar.command = t.retrain ? "patois.retrain" : "patois.showStatus";
  };

  context.subscriptions.push(
    vscode.commands.registerCommand("patois.showStatus", async () => {
      const s = (await client?.sendRequest("patois/status", {})) as Status;
      show(s);
      vscode.window.showInformationMessage(statusText(s).tooltip.replace(/\n/g, " · "));
    }),
    vscode.commands.registerCommand("patois.retrain", () => {
      const term = vscode.window.createTerminal("patois train");
      term.show();
      term.sendText(`${exe} train`);
    }),
    vscode.commands.registerCommand("patois.explainSelection", async () => explain()),
    vscode.commands.registerCommand("patois.ask", async () => ask()),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration("patois")) {
        const now = settings();
        const c = vscode.workspace.getConfiguration("patois");
        const cleared: Record<string, unknown> = {};
        for (const k of SETTING_KEYS) {
          if (sent[k] !== undefined && now[k] === undefined) cleared[k] = c.inspect(k)?.defaultValue;
        }
        sent = now;
        client?.sendNotification("workspace/didChangeConfiguration", { settings: serverSettings(now, cleared as Settings) });
      }
    }),
  );

  new NextEdits(() => client).register(context);

  await client.start();
  client.onNotification("patois/status", (s: Status) => show(s));
  void last;
}

/** "Explain with patois": the model's summary streamed into a panel, then the explanation. */
async function explain(uri?: string, range?: { start: { line: number }; end: { line: number } }): Promise<void> {
  const editor = vscode.window.activeTextEditor;
  if (!client || (!editor && !uri)) return;
  const docUri = uri ?? editor!.document.uri.toString();
  const r = range ?? { start: { line: editor!.selection.start.line, character: 0 }, end: { line: editor!.selection.end.line, character: 0 } };
  const panel = sourcesPanel("patois: explanation");
  panel.webview.html = panelHtml("_Reading the index…_");
  const token = `patois/explain/${Date.now()}`;
  const partial = client.onProgress(new ProgressType<{ text: string }>(), token, (v) => {
    panel.webview.html = panelHtml(`### Summary\n\n${v.text} …`);
  });
  try {
    const params = { textDocument: { uri: docUri }, range: r, partialResultToken: token };
    const result = (await client.sendRequest("patois/explain", params)) as { markdown: string; symbol?: string };
    panel.title = `patois: ${result.symbol ?? "explanation"}`;
    panel.webview.html = panelHtml(result.markdown);
  } finally {
    partial.dispose();
  }
}

/** "Ask patois": the question's answer streamed into a panel, then with its sources. */
async function ask(): Promise<void> {
  if (!client) return;
  const question = await vscode.window.showInputBox({ prompt: "Ask patois about this code and its history", placeHolder: "Why did `fuse` change?" });
  if (!question) return;
  const panel = sourcesPanel(`patois: ${question}`);
  panel.webview.html = panelHtml(`### ${question}\n\n_Looking through the index…_`);
  const token = `patois/ask/${Date.now()}`;
  const partial = client.onProgress(new ProgressType<{ text: string }>(), token, (v) => {
    panel.webview.html = panelHtml(`### ${question}\n\n${v.text} …`);
  });
  try {
    const result = (await client.sendRequest("patois/ask", { question, partialResultToken: token })) as { markdown: string };
    panel.webview.html = panelHtml(`### ${question}\n\n${result.markdown}`);
  } finally {
    partial.dispose();
  }
}

/** A panel beside the editor whose `path#Lline` links open that line. */
function sourcesPanel(title: string): vscode.WebviewPanel {
  const panel = vscode.window.createWebviewPanel("patoisSources", title, vscode.ViewColumn.Beside, { enableScripts: true });
  panel.webview.onDidReceiveMessage(async (m: { path: string; line: number }) => {
    const doc = await vscode.workspace.openTextDocument(vscode.Uri.file(m.path));
    const pos = new vscode.Position(Math.max(m.line - 1, 0), 0);
    await vscode.window.showTextDocument(doc, { viewColumn: vscode.ViewColumn.One, selection: new vscode.Range(pos, pos) });
  });
  return panel;
}

function panelHtml(markdown: string): string {
  return `<!DOCTYPE html><html><body>${explanationHtml(markdown)}
<script>
const vscode = acquireVsCodeApi();
document.querySelectorAll("a[data-path]").forEach(a => a.addEventListener("click", e => {
  e.preventDefault();
  vscode.postMessage({ path: a.dataset.path, line: Number(a.dataset.line) });
}));
</script></body></html>`;
}

export async function deactivate(): Promise<void> {
  await client?.stop();
}
