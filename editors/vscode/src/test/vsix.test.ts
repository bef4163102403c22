// Checks the packaged extension (run after `npm run package`).
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { inflateRawSync } from "node:zlib";
import * as path from "node:path";
import { SETTING_KEYS } from "../logic";

/** One file out of a zip archive (stored or deflated entries). */
function unzipEntry(zip: Buffer, name: string): Buffer {
  const eocd = zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  assert.ok(eocd >= 0, "not a zip file");
  let p = zip.readUInt32LE(eocd + 16);
  const count = zip.readUInt16LE(eocd + 10);
  for (let i = 0; i < count; i++) {
    const method = zip.readUInt16LE(p + 10);
    const size = zip.readUInt32LE(p + 20);
    const nameLen = zip.readUInt16LE(p + 28);
    const extraLen = zip.readUInt16LE(p + 30);
    const commentLen = zip.readUInt16LE(p + 32);
    const local = zip.readUInt32LE(p + 42);
    const entry = zip.toString("utf8", p + 46, p + 46 + nameLen);
    if (entry === name) {
      const start = local + 30 + zip.readUInt16LE(local + 26) + zip.readUInt16LE(local + 28);
      const data = zip.subarray(start, start + size);
      return method === 8 ? inflateRawSync(data) : data;
    }
    p += 46 + nameLen + extraLen + commentLen;
  }
  throw new Error(`${name} is not in the archive`);
}

test("the packaged manifest declares activation, commands, menus and settings", () => {
  const vsix = readFileSync(path.join(__dirname, "..", "..", "patois.vsix"));
  const m = JSON.parse(unzipEntry(vsix, "extension/package.json").toString("utf8"));
  assert.equal(m.main, "./out/extension.js");
  for (const lang of ["rust", "python", "typescript", "javascript", "go"]) {
    assert.ok(m.activationEvents.includes(`onLanguage:${lang}`), lang);
  }
  const commands = m.contributes.commands.map((c: { command: string }) => c.command);
  assert.deepEqual(commands.sort(), ["patois.ask", "patois.dismissNextEdit", "patois.explainSelection", "patois.nextEdit", "patois.retrain", "patois.showStatus"]);
  const keys = m.contributes.keybindings.map((k: { command: string; key: string }) => `${k.key} ${k.command}`);
  assert.deepEqual(keys, ["tab patois.nextEdit", "escape patois.dismissNextEdit"], "Tab and Escape for next edits");
  assert.equal(m.contributes.menus["editor/context"][0].command, "patois.explainSelection");
  assert.deepEqual(Object.keys(m.contributes.configuration.properties).sort(), ["patois.adapter", "patois.adapterName", "patois.adapterStrength", "patois.apiKeyEnv", "patois.budget", "patois.disabledLanguages", "patois.endpoint", "patois.fallbackToLocal", "patois.idleSeconds", "patois.idleTrainingMinutes", "patois.latencyBudgetMs", "patois.maxTokens", "patois.model", "patois.modelName", "patois.path", "patois.trainWhenIdle"]);
  for (const k of SETTING_KEYS) {
    assert.ok(m.contributes.configuration.properties[`patois.${k}`], `the server's ${k} is a setting`);
  }
  assert.ok(unzipEntry(vsix, "extension/out/extension.js").length > 100, "compiled code is packaged");
  assert.ok(unzipEntry(vsix, "extension/node_modules/vscode-languageclient/package.json").length > 0, "runtime dependency packaged");
});
