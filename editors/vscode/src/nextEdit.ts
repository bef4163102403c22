import * as vscode from "vscode";
import { LanguageClient } from "vscode-languageclient/node";
import { NextEditItem, shiftAfter } from "./logic";

/** How long after an edit the server is asked for the edits that follow it. */
const REST_MS = 400;
/** The context key the Tab and Escape bindings read. */
const SHOWN = "patois.nextEditShown";

/**
 * Next edits: when the user rests after an edit, `patois/nextEdit` is asked; the first
 * suggestion is shown at its line (a decoration and a status bar item), Tab jumps there,
 * Tab again applies it and shows the next one, Escape dismisses them.
 */
export class NextEdits {
  private pending: NextEditItem[] = [];
  private timer: ReturnType<typeof setTimeout> | undefined;
  private applying = false;
  private readonly decoration = vscode.window.createTextEditorDecorationType({
    backgroundColor: new vscode.ThemeColor("diffEditor.insertedTextBackground"),
    after: { color: new vscode.ThemeColor("editorGhostText.foreground"), margin: "0 0 0 2em" },
  });
  private readonly item = vscode.window.createStatusBarItem(vscode.StatusBarAlignment.Right, 99);

  constructor(private readonly client: () => LanguageClient | undefined) {
    this.item.command = "patois.nextEdit";
  }

  register(context: vscode.ExtensionContext): void {
    context.subscriptions.push(
      this.decoration,
      this.item,
      vscode.workspace.onDidChangeTextDocument((e) => {
        if (this.applying || e.document.uri.scheme !== "file" || e.contentChanges.length === 0) return;
        clearTimeout(this.timer);
        this.timer = setTimeout(() => void this.ask(e.document.uri), REST_MS);
      }),
      vscode.window.onDidChangeVisibleTextEditors(() => this.show()),
      vscode.commands.registerCommand("patois.nextEdit", () => this.jumpOrApply()),
      vscode.commands.registerCommand("patois.dismissNextEdit", () => {
        this.pending = [];
        this.show();
      }),
    );
  }

  private async ask(uri: vscode.Uri): Promise<void> {
    const c = this.client();
    if (!c) return;
    const result = (await c.sendRequest("patois/nextEdit", { textDocument: { uri: uri.toString() } })) as {
      edits: NextEditItem[];
    };
    this.pending = result.edits;
    this.show();
  }

  /** Decorates the first pending edit's line where it is visible; the status says what it is. */
  private show(): void {
    for (const editor of vscode.window.visibleTextEditors) editor.setDecorations(this.decoration, []);
    const e = this.pending[0];
    void vscode.commands.executeCommand("setContext", SHOWN, e !== undefined);
    if (!e) {
      this.item.hide();
      return;
    }
    const line = e.range.start.line;
    // An inserted line shows on this one: its break as ⏎.
    const shown = e.newText.replace(/\n\s*/g, " ⏎ ");
    for (const editor of vscode.window.visibleTextEditors) {
      if (editor.document.uri.toString() !== e.uri) continue;
      const range = new vscode.Range(line, e.range.start.character, line, e.range.end.character);
      editor.setDecorations(this.decoration, [{ range, renderOptions: { after: { contentText: `→ ${shown}  (${e.reason})` } } }]);
    }
    this.item.text = `$(arrow-right) patois next edit: ${shown} (Tab)`;
    this.item.tooltip = e.reason;
    this.item.show();
  }

  /** Jumps to the first pending edit; when the cursor is on its line already, applies it. */
  private async jumpOrApply(): Promise<void> {
    const e = this.pending[0];
    if (!e) return;
    const doc = await vscode.workspace.openTextDocument(vscode.Uri.parse(e.uri));
    const editor = await vscode.window.showTextDocument(doc);
    const r = e.range;
    const range = new vscode.Range(r.start.line, r.start.character, r.end.line, r.end.character);
    if (editor.selection.active.line !== r.start.line) {
      editor.selection = new vscode.Selection(range.start, range.start);
      editor.revealRange(range, vscode.TextEditorRevealType.InCenterIfOutsideViewport);
      this.show();
      return;
    }
    this.applying = true;
    try {
      await editor.edit((b) => b.replace(range, e.newText));
    } finally {
      this.applying = false;
    }
    this.pending = shiftAfter(this.pending.slice(1), e);
    this.show();
  }
}
