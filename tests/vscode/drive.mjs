// Run by tests/vscode.rs: the packaged extension in a real VS Code (code-server) driven in
// Debian's chromium through playwright-core. Installs the .vsix, opens the fixture folder,
// types on a line, waits for ghost text, accepts it with Tab, runs "Explain with patois",
// follows a citation, reads the status bar, explains again through the server's source
// action (the language client's route to the same panel), and asks a question with "Ask
// patois", following one of the answer's sources, then renames a call and takes the next
// edit (the import) with Tab to jump and Tab to apply. Writes "ok" or the failure to
// $PATOIS_RESULT; screenshots go to $PATOIS_SHOTS (failure.png, or ghost-text.png and
// success.png).
import { spawn, execFileSync } from "node:child_process";
import { createRequire } from "node:module";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";

const env = (name) => {
  const v = process.env[name];
  if (v === undefined) throw new Error(`${name} is not set`);
  return v;
};
const install = env("PATOIS_CODE_SERVER");
const codeServer = path.join(install, "node_modules/.bin/code-server");
const { chromium } = createRequire(path.join(install, "package.json"))("playwright-core");
const folder = env("PATOIS_FOLDER");
const file = env("PATOIS_FILE");
const row = Number(env("PATOIS_ROW"));
const typed = env("PATOIS_TYPED");
const word = process.env.PATOIS_WORD ?? "";
const explainFile = env("PATOIS_EXPLAIN_FILE");
const explainRow = Number(env("PATOIS_EXPLAIN_ROW"));
// Citations the explanation must show, as `path:line`; the last one is followed.
const cited = env("PATOIS_CITED").split(",");
// "Ask patois": the question, and a source its answer must list, as `path:line` (followed).
const question = env("PATOIS_ASK");
const asked = env("PATOIS_ASK_SOURCE");
const shots = env("PATOIS_SHOTS");
const scratch = env("PATOIS_SCRATCH");
const step = { name: "start" };

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

async function waitFor(what, fn, ms = 60000) {
  const until = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const userData = path.join(scratch, "user-data");
const extensions = path.join(scratch, "extensions");
fs.mkdirSync(path.join(userData, "User"), { recursive: true });
fs.writeFileSync(
  path.join(userData, "User/settings.json"),
  JSON.stringify({
    "patois.path": env("PATOIS_BIN"),
    "security.workspace.trust.enabled": false,
    "workbench.startupEditor": "none",
    "workbench.tips.enabled": false,
    "workbench.welcomePage.walkthroughs.openOnInstall": false,
    "extensions.autoUpdate": false,
    "extensions.autoCheckUpdates": false,
    "telemetry.telemetryLevel": "off",
    "editor.inlineSuggest.enabled": true,
    "editor.quickSuggestions": { other: false, comments: false, strings: false },
    "editor.suggestOnTriggerCharacters": false,
    "editor.autoClosingBrackets": "never",
    "files.autoSave": "off",
    "chat.disableAIFeatures": true,
  }),
);
step.name = "install the extension";
execFileSync(
  codeServer,
  ["--install-extension", env("PATOIS_VSIX"), "--extensions-dir", extensions, "--user-data-dir", userData],
  { stdio: ["ignore", "pipe", "pipe"] },
);

const port = await freePort();
const serverLog = fs.openSync(path.join(scratch, "code-server.log"), "w");
const server = spawn(
  codeServer,
  [
    "--auth", "none", "--bind-addr", `127.0.0.1:${port}`, "--disable-telemetry",
    "--disable-update-check", "--disable-workspace-trust", "--disable-getting-started-override",
    "--extensions-dir", extensions, "--user-data-dir", userData, folder,
  ],
  { stdio: ["ignore", serverLog, serverLog], detached: true },
);
const browser = await chromium.launch({
  executablePath: process.env.PATOIS_CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox"],
});
const page = await browser.newPage({ viewport: { width: 1400, height: 850 } });
const result = env("PATOIS_RESULT");

async function main() {
  step.name = "open VS Code";
  await waitFor("code-server to listen", async () => {
    try {
      return (await fetch(`http://127.0.0.1:${port}/healthz`)).ok;
    } catch {
      return false;
    }
  });
  await page.goto(`http://127.0.0.1:${port}/?folder=${encodeURIComponent(folder)}`);
  await page.locator(".monaco-workbench").waitFor({ timeout: 60000 });
  await page.locator(".explorer-folders-view, .explorer-viewlet").first().waitFor({ timeout: 60000 });

  step.name = `open ${file}`;
  await openFile(file);
  const editor = page.locator(".editor-instance .monaco-editor").first();
  await editor.waitFor();

  step.name = "the status bar shows the model and the index";
  // The item's accessible label is its text and its tooltip.
  const wantModel = env("PATOIS_MODEL_LABEL");
  // Read at once: an item that goes away between listing and reading (the indexing
  // progress) would otherwise leave a locator waiting for it.
  const labels = () =>
    page
      .locator(".statusbar-item", { hasText: "patois" })
      .evaluateAll((items) => items.map((item) => item.getAttribute("aria-label") ?? ""));
  await waitFor("the patois status item to show the loaded model", async () =>
    (await labels()).some((l) => l.startsWith("check") && l.includes(`model: ${wantModel}`)),
  120000).catch(async (e) => {
    throw new Error(`${e.message}; the patois items say ${JSON.stringify(await labels())}`);
  });
  const label = (await labels()).find((l) => l.includes(`model: ${wantModel}`));
  if (!/\b[1-9]\d* files, [1-9]\d* commits indexed/.test(label)) {
    throw new Error(`the status item says ${JSON.stringify(label)}`);
  }

  step.name = `type on line ${row} and wait for ghost text`;
  await gotoLine(row);
  await page.keyboard.press("End");
  await page.keyboard.type(typed, { delay: 30 });
  const ghost = page.locator(".monaco-editor .ghost-text-decoration, .monaco-editor .ghost-text");
  await ghost.first().waitFor({ timeout: 60000 });
  const shown = (await ghost.allInnerTexts()).join("");
  await page.screenshot({ path: path.join(shots, "ghost-text.png") });
  if (word && !shown.startsWith(word)) throw new Error(`the ghost text is ${JSON.stringify(shown)}`);

  step.name = "accept the ghost text with Tab";
  await page.keyboard.press("Tab");
  // Saved until the file holds more than what was typed. (Whether the ghost text is gone
  // cannot be waited for: the server offers the next completion at once after Tab.)
  const afterTyped = (line) => line.slice(line.indexOf(typed.trimStart()) + typed.trimStart().length);
  const saved = await waitFor(`the accepted text saved in ${file}`, async () => {
    await page.keyboard.press("Control+S");
    const text = fs.readFileSync(path.join(folder, file), "utf8");
    const line = text.split("\n")[row - 1];
    return line.includes(typed.trim()) && afterTyped(line).trim() !== "" ? text : null;
  }, 15000);
  const line = saved.split("\n")[row - 1];
  const accepted = afterTyped(line);
  if (accepted.trim() === "" || (word && !accepted.startsWith(word))) {
    throw new Error(`after Tab, line ${row} is ${JSON.stringify(line)}`);
  }

  step.name = `Explain with patois on ${explainFile}:${explainRow}`;
  await page.keyboard.press("Escape");
  await openFile(explainFile);
  await gotoLine(explainRow);
  await runCommand("Explain with patois");
  const frame = await waitFor("the explanation panel", explanationFrame);
  const links = frame.locator("a[data-path]");
  const targets = [];
  for (let i = 0; i < (await links.count()); i++) {
    targets.push({
      path: await links.nth(i).getAttribute("data-path"),
      line: Number(await links.nth(i).getAttribute("data-line")),
      label: await links.nth(i).innerText(),
    });
  }
  const at = (c) =>
    targets.findIndex((t) => path.relative(folder, t.path) === c.split(":")[0] && t.line === Number(c.split(":")[1]));
  for (const c of cited) {
    if (at(c) < 0) throw new Error(`no citation of ${c} among ${JSON.stringify(targets)}`);
  }
  const follow = cited[cited.length - 1];
  const want = targets[at(follow)];

  step.name = `follow the citation ${follow}`;
  await links.nth(at(follow)).click();
  await waitFor(`${follow} to open at its line`, async () => {
    const tab = await page.locator(".tab.active").first().innerText().catch(() => "");
    const pos = await page.locator(".statusbar-item", { hasText: /Ln \d+, Col \d+/ }).first().innerText().catch(() => "");
    return tab.includes(path.basename(want.path)) && pos.includes(`Ln ${want.line},`);
  }, 20000);
  await page.screenshot({ path: path.join(shots, "success.png") });

  step.name = "Explain with patois as the server's source action";
  await runCommand("View: Close All Editors");
  await waitFor("the editors to close", async () => (await explanationFrame()) === null, 10000);
  await openFile(explainFile);
  await gotoLine(explainRow);
  await runCommand("Source Action...");
  const action = page.locator(".action-widget .monaco-list-row", { hasText: "Explain with patois" });
  await page.locator(".action-widget .monaco-list-row.focused", { hasText: "Explain with patois" })
    .or(action.first())
    .first()
    .waitFor({ timeout: 20000 });
  // Move the focus to the row (the list may start on another source action), then apply.
  for (let i = 0; i < 5 && !(await action.first().getAttribute("class"))?.includes("focused"); i++) {
    await page.keyboard.press("ArrowDown");
  }
  await page.keyboard.press("Enter");
  const again = await waitFor("the explanation panel from the source action", explanationFrame);
  const cites = await again.locator("a[data-path]").count();
  if (cites < cited.length) throw new Error(`the source action's explanation has ${cites} citations`);

  step.name = `Ask patois ${JSON.stringify(question)} and follow the source ${asked}`;
  await runCommand("View: Close All Editors");
  await waitFor("the editors to close", async () => (await explanationFrame()) === null, 10000);
  await runCommand("Ask patois");
  const box = page.locator(".quick-input-widget input");
  await box.waitFor();
  await box.fill(question);
  await page.keyboard.press("Enter");
  const answer = await waitFor("the answer panel with its sources", explanationFrame);
  const sources = answer.locator("a[data-path]");
  const [askedPath, askedLine] = asked.split(":");
  let source = -1;
  await waitFor(`a source at ${asked}`, async () => {
    for (let i = 0; i < (await sources.count()) && source < 0; i++) {
      const p = path.relative(folder, (await sources.nth(i).getAttribute("data-path")) ?? "");
      if (p === askedPath && (await sources.nth(i).getAttribute("data-line")) === askedLine) source = i;
    }
    return source >= 0;
  }, 30000);
  await sources.nth(source).click();
  await waitFor(`${asked} to open at its line`, async () => {
    const tab = await page.locator(".tab.active").first().innerText().catch(() => "");
    const pos = await page.locator(".statusbar-item", { hasText: /Ln \d+, Col \d+/ }).first().innerText().catch(() => "");
    return tab.includes(path.basename(askedPath)) && pos.includes(`Ln ${askedLine},`);
  }, 20000);

  step.name = "rename the call in src/app.rs; Tab jumps to the next edit, Tab applies it";
  await runCommand("View: Close All Editors");
  await waitFor("the editors to close", async () => (await explanationFrame()) === null, 10000);
  await openFile("src/app.rs");
  await gotoLine(4);
  await page.keyboard.press("Home");
  await page.keyboard.press("Control+Shift+ArrowRight");
  await page.keyboard.type("load_value", { delay: 30 });
  // Off the line, so that no ghost text there takes the Tab.
  await page.keyboard.press("ArrowUp");
  await page.locator(".statusbar-item", { hasText: "patois next edit" }).first().waitFor({ timeout: 30000 });
  await page.keyboard.press("Tab");
  const cursorAt = async () =>
    await page.locator(".statusbar-item", { hasText: /Ln \d+, Col \d+/ }).first().innerText().catch(() => "");
  await waitFor("the cursor at the import on line 1", async () => (await cursorAt()).includes("Ln 1,"), 10000);
  await page.keyboard.press("Tab");
  await waitFor("the import renamed in src/app.rs", async () => {
    await page.keyboard.press("Control+S");
    return fs.readFileSync(path.join(folder, "src/app.rs"), "utf8").startsWith("use crate::store::load_value;");
  }, 15000);
}

/** The frame of an open explanation panel (it has citation links), or null. */
async function explanationFrame() {
  for (const f of page.frames()) {
    try {
      if ((await f.locator("a[data-path]").count()) > 0) return f;
    } catch {
      // A frame that went away while we looked.
    }
  }
  return null;
}

async function openFile(rel) {
  await page.keyboard.press("Control+P");
  const input = page.locator(".quick-input-widget input");
  await input.waitFor();
  await input.fill(rel);
  await page.locator(".quick-input-list .monaco-list-row.focused", { hasText: path.basename(rel) }).waitFor();
  await page.keyboard.press("Enter");
  await page.locator(".tab.active", { hasText: path.basename(rel) }).waitFor();
  await page.locator(".editor-instance .monaco-editor.focused").waitFor();
}

async function gotoLine(n) {
  await page.keyboard.press("Control+G");
  const input = page.locator(".quick-input-widget input");
  await input.waitFor();
  await input.fill(`:${n}`);
  await page.keyboard.press("Enter");
}

async function runCommand(title) {
  await page.keyboard.press("F1");
  const input = page.locator(".quick-input-widget input");
  await input.waitFor();
  await input.fill(`>${title}`);
  await page.locator(".quick-input-list .monaco-list-row", { hasText: title }).first().waitFor();
  await page.keyboard.press("Enter");
}

let outcome = "ok";
try {
  await main();
} catch (e) {
  outcome = `FAIL at "${step.name}": ${e.message}`;
  await page.screenshot({ path: path.join(shots, "failure.png") }).catch(() => {});
} finally {
  fs.writeFileSync(result, outcome);
  await browser.close().catch(() => {});
  try {
    process.kill(-server.pid, "SIGTERM");
  } catch {
    // Already gone.
  }
}
process.exit(0);
