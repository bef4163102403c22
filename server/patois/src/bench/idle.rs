//! `patois bench idle`: how fast the server stops its idle trainer when the user types,
//! and what typing costs while a trainer is stopped, through the real server.

use anyhow::{bail, Result};
use patois_testkit::lsp::{process_state, Client};
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};

/// Waits until `pid`'s state satisfies `ok`, polling every 100 µs; `None` after `limit`.
fn until_state(pid: u32, limit: Duration, ok: impl Fn(char) -> bool) -> Option<()> {
    let t = Instant::now();
    while t.elapsed() < limit {
        if process_state(pid).is_some_and(&ok) {
            return Some(());
        }
        std::thread::sleep(Duration::from_micros(100));
    }
    None
}

/// An unsaved document being typed into at its end.
struct Typing {
    uri: String,
    text: String,
    version: i64,
}

impl Typing {
    /// The end of the document as an LSP position: (line, UTF-16 column).
    fn end(&self) -> (u32, u32) {
        let row = self.text.split('\n').count() as u32 - 1;
        let col = self.text.rsplit('\n').next().unwrap_or("").encode_utf16().count() as u32;
        (row, col)
    }

    /// Types `ch` at the end of the document.
    fn type_char(&mut self, c: &mut Client, ch: char) {
        let (row, col) = self.end();
        self.text.push(ch);
        self.version += 1;
        let at = json!({ "line": row, "character": col });
        c.notify(
            "textDocument/didChange",
            json!({ "textDocument": { "uri": self.uri, "version": self.version },
                "contentChanges": [{ "range": { "start": at, "end": at }, "text": ch }] }),
        );
    }

    /// Replaces the whole document with `text`.
    fn reset(&mut self, c: &mut Client, text: &str) {
        self.text = text.to_string();
        self.version += 1;
        c.notify(
            "textDocument/didChange",
            json!({ "textDocument": { "uri": self.uri, "version": self.version },
                "contentChanges": [{ "text": text }] }),
        );
    }

    /// Asks for a completion at the end of the document: the round trip in ms.
    fn complete(&self, c: &mut Client) -> f64 {
        let (row, col) = self.end();
        let t = Instant::now();
        c.request(
            "textDocument/inlineCompletion",
            json!({ "textDocument": { "uri": self.uri },
                "position": { "line": row, "character": col }, "context": { "triggerKind": 2 } }),
        );
        t.elapsed().as_secs_f64() * 1e3
    }
}

/// The server's idle period: longer than a completion computed from scratch.
const IDLE_SECONDS: u64 = 5;

/// What the benchmark types, one character per keystroke.
const TYPED: &str = "for v in values {\n        total += v;\n    }\n    total\n}\n";

pub fn run(dir: &Path, keystrokes: usize) -> Result<()> {
    if !cfg!(target_os = "linux") {
        bail!("bench idle reads process states from /proc: Linux only");
    }
    let root = patois_index::repo_root(dir)?;
    let file = "bench_idle_scratch.rs";
    println!(
        "bench idle: {keystrokes} keystrokes while `patois serve` trains in {} when idle \
         (it writes .patois/adapters there as the server does)",
        root.display()
    );
    let exe = std::env::current_exe()?;
    let mut c = Client::start(&exe, &root);
    // No completion caches: every keystroke is generated, so the two phases compare. The
    // idle period is longer than a recomputed completion, so none starts the trainer.
    let options = json!({ "trainWhenIdle": true, "idleSeconds": IDLE_SECONDS,
        "idleTrainingMinutes": 30, "cache": false });
    c.request(
        "initialize",
        json!({ "processId": null, "rootUri": format!("file://{}", root.display()),
            "capabilities": { "window": { "workDoneProgress": true } },
            "initializationOptions": options }),
    );
    c.notify("initialized", json!({}));
    c.wait("indexing to finish", patois_testkit::lsp::is_progress_end);
    c.wait("the model to load", |v| {
        v["method"] == "patois/status"
            && (v["params"]["model"].is_object() || v["params"]["modelError"].is_string())
    });
    // An unsaved scratch document (never written to disk).
    let start = "pub fn scratch(values: &[u32]) -> u32 {\n    let mut total = 0;\n    ";
    let typed: Vec<char> = TYPED.chars().cycle().take(keystrokes).collect();
    let mut doc = Typing {
        uri: format!("file://{}", root.join(file).display()),
        text: start.into(),
        version: 1,
    };
    c.notify(
        "textDocument/didOpen",
        json!({ "textDocument": { "uri": doc.uri, "languageId": "rust", "version": 1,
            "text": doc.text } }),
    );
    // Typing with no trainer yet (keystrokes keep the server from being idle).
    let mut before = Vec::new();
    for ch in &typed {
        doc.type_char(&mut c, *ch);
        before.push(doc.complete(&mut c));
    }
    let trained =
        |v: &Value| v["method"] == "patois/status" && v["params"]["training"]["state"].is_string();
    if c.seen.iter().any(trained) {
        bail!("the trainer started while typing: the idle period is too short for this machine");
    }
    // The same keystrokes again, each after the trainer ran for a while.
    doc.reset(&mut c, start);
    let running = c.wait("idle training to start", |v: &Value| {
        v["method"] == "patois/status"
            && matches!(v["params"]["training"]["state"].as_str(), Some("running" | "failed"))
    });
    let Some(pid) = running["params"]["training"]["pid"].as_u64().map(|p| p as u32) else {
        bail!("idle training did not start: {}", running["params"]["training"]);
    };
    let (mut stops, mut during) = (Vec::new(), Vec::new());
    for ch in &typed {
        // Let the trainer work at full speed for a while, then type.
        if until_state(pid, Duration::from_secs(IDLE_SECONDS + 30), |s| s != 'T').is_none() {
            bail!("the trainer {pid} was not continued after the idle period");
        }
        std::thread::sleep(Duration::from_millis(1500));
        if process_state(pid).is_none() {
            bail!("the trainer {pid} ended before the measurements did");
        }
        let sent = Instant::now();
        doc.type_char(&mut c, *ch);
        if until_state(pid, Duration::from_secs(1), |s| s == 'T').is_none() {
            bail!("the trainer {pid} kept running for a second after a keystroke")
        }
        stops.push(sent.elapsed().as_secs_f64() * 1e3);
        during.push(doc.complete(&mut c));
    }
    c.request("shutdown", Value::Null);
    c.notify("exit", Value::Null);
    let _ = c.child.wait();
    let p = |t: &mut Vec<f64>, q: f64| crate::bench::generate::pct(t, q);
    println!(
        "  typing with no trainer:          completion p50 {:.0} ms, max {:.0} ms",
        p(&mut before, 0.5),
        p(&mut before, 1.0)
    );
    println!(
        "  typing with the trainer stopped: completion p50 {:.0} ms, max {:.0} ms",
        p(&mut during, 0.5),
        p(&mut during, 1.0)
    );
    println!(
        "  the trainer was seen stopped {:.2} ms after the keystroke was sent (p50; p95 \
         {:.2} ms, max {:.2} ms; {} of {} over the 100 ms goal)",
        p(&mut stops, 0.5),
        p(&mut stops, 0.95),
        p(&mut stops, 1.0),
        stops.iter().filter(|ms| **ms > 100.0).count(),
        stops.len()
    );
    Ok(())
}
