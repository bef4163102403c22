//! The real `patois serve` under generated message sequences: malformed frames, wrong
//! types, unknown methods, out-of-range and mid-character positions in each position
//! encoding, random incremental edits interleaved with completion, cancel, context and
//! explain requests, documents appearing and disappearing on disk. It passes when every
//! request is answered (result or error), the server never dies, and after every edit the
//! server's text equals the text this client holds.

use patois_generate::write::{make_model_dir, tiny_config};
use patois_testkit::lsp::{frame, Client};
use patois_testkit::Fixture;
use serde_json::{json, Value};
use std::io::Write;

/// Sequences per position encoding.
const SEQUENCES: usize = 200;
/// Operations per sequence.
const OPERATIONS: usize = 24;

/// A small deterministic generator (xorshift64*), so a failure replays.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}

const PIECES: &[&str] = &[
    "",
    "a",
    "é",
    "😀",
    "中文",
    "\n",
    "\r\n",
    "\r",
    "\t",
    "fn x() {}\n",
    "let v = store::",
    "}",
    "/// doc\n",
    "    ",
    "x.",
    "\"s😀\"",
];

const STARTS: &[&str] = &[
    "",
    "use crate::store::fetch_value;\n\nfn main() {\n    let n = \n}\n",
    "fn é😀() {\r\n    let 中 = 1;\r\n}\r\n",
    "a\rb\rc",
    "pub fn f(x: u32) -> u32 {\n\tx + 1\n}",
];

/// How the client counts columns.
#[derive(Clone, Copy)]
enum Cols {
    Utf8,
    Utf16,
}

/// The client's own model of positions, as LSP specifies them: lines end at `\n`, `\r\n`
/// or `\r`; columns past the line end clamp to it; lines past the end clamp to the end;
/// a column inside a character means its start.
fn to_offset(text: &str, line: u64, col: u64, cols: Cols) -> usize {
    let breaks: Vec<(usize, usize)> = {
        let b = text.as_bytes();
        let mut v = Vec::new();
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'\r' if b.get(i + 1) == Some(&b'\n') => {
                    v.push((i, 2));
                    i += 1;
                }
                b'\r' | b'\n' => v.push((i, 1)),
                _ => {}
            }
            i += 1;
        }
        v
    };
    let start = match line {
        0 => 0,
        l if l as usize <= breaks.len() => {
            let (i, len) = breaks[l as usize - 1];
            i + len
        }
        _ => return text.len(),
    };
    let end = breaks.iter().find(|(i, _)| *i >= start).map_or(text.len(), |(i, _)| *i);
    let mut units = 0u64;
    for (i, c) in text[start..end].char_indices() {
        let w = match cols {
            Cols::Utf8 => c.len_utf8(),
            Cols::Utf16 => c.len_utf16(),
        } as u64;
        if units + w > col {
            return start + i;
        }
        units += w;
    }
    end
}

fn line_count(text: &str) -> usize {
    text.matches('\n').count() + text.matches('\r').count() + 1
}

struct Session {
    client: Client,

    root: std::path::PathBuf,
    /// Requests sent and not yet answered.
    pending: Vec<Value>,
    requests: usize,
    messages: usize,
}

impl Session {
    fn send(&mut self, v: Value) {
        self.messages += 1;
        if v.get("id").is_some() && v.get("method").is_some() {
            self.requests += 1;
            self.pending.push(v["id"].clone());
        }
        self.client.send(v);
    }

    fn raw(&mut self, bytes: &[u8]) {
        self.messages += 1;
        self.client.stdin.write_all(bytes).unwrap();
        self.client.stdin.flush().unwrap();
    }

    fn request(&mut self, id: Value, method: &str, params: Value) {
        self.send(json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }));
    }

    fn notify(&mut self, method: &str, params: Value) {
        self.send(json!({ "jsonrpc": "2.0", "method": method, "params": params }));
    }

    /// Waits until every pending request has its answer, each a result or an error.
    fn settle(&mut self, seed: u64) {
        while let Some(id) = self.pending.first().cloned() {
            let r = self.client.wait(&format!("the answer to {id} (seed {seed})"), |v| {
                v["id"] == id && v.get("method").is_none()
            });
            assert!(r.get("result").is_some() || r["error"]["code"].is_i64(), "{r}");
            self.pending.retain(|p| *p != id);
        }
        assert!(self.client.child.try_wait().unwrap().is_none(), "the server died (seed {seed})");
        // Keep memory flat over thousands of messages.
        self.client.seen.clear();
    }

    fn check_text(&mut self, id: &mut i64, uri: &str, want: &str, seed: u64) {
        *id += 1;
        let want_id = json!(*id);
        self.request(want_id.clone(), "patois/documentText", json!({ "uri": uri }));
        let r =
            self.client.wait("documentText", |v| v["id"] == want_id && v.get("method").is_none());
        assert_eq!(r["result"].as_str(), Some(want), "server and client disagree (seed {seed})");
        self.settle(seed);
    }
}

fn position(rng: &mut Rng, text: &str) -> (Value, u64, u64) {
    let lines = line_count(text) as u64;
    let (line, col) = match rng.below(10) {
        0 => (u64::from(u32::MAX), u64::from(u32::MAX)),
        1 => (lines + rng.below(3) as u64, rng.below(5) as u64),
        _ => (rng.below(lines as usize) as u64, rng.below(24) as u64),
    };
    (json!({ "line": line, "character": col }), line, col)
}

fn run_session(cols: Cols, offered: &[&str], seed0: u64) -> (usize, usize) {
    let fx = Fixture::store_and_app();
    fx.commit("Store and app (#3)", "ann", 1_000);
    let corpus = fx.read("src/store.rs") + &fx.read("src/app.rs");
    make_model_dir(
        &fx.root().join(".patois/model"),
        std::iter::repeat_n(corpus.as_str(), 4),
        &tiny_config(300),
        1,
    )
    .unwrap();
    fx.write(
        "patois.toml",
        "max_tokens = 4\nprompt_tokens = 256\nbudget = 128\nlatency_budget_ms = 0\n",
    );
    let root = fx.root().canonicalize().unwrap();
    let exe = std::path::Path::new(env!("CARGO_BIN_EXE_patois"));
    let home = root.join(".no-installed-models");
    let client = Client::start_with_env(exe, &root, &[("PATOIS_HOME", &home)]);
    let mut s = Session { client, root: root.clone(), pending: vec![], requests: 0, messages: 0 };
    s.request(
        json!(0),
        "initialize",
        json!({ "processId": null, "rootUri": format!("file://{}", root.display()),
                "capabilities": { "general": { "positionEncodings": offered } } }),
    );
    let init = s.client.wait("initialize", |v| v["id"] == 0);
    s.settle(seed0);
    let expected = match cols {
        Cols::Utf8 => "utf-8",
        Cols::Utf16 => "utf-16",
    };
    assert_eq!(init["result"]["capabilities"]["positionEncoding"], expected, "{init}");
    s.notify("initialized", json!({}));

    let mut id = 1i64;
    for n in 0..SEQUENCES {
        let seed = seed0 + n as u64;
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let uri = format!("file://{}/src/fuzz_{}.rs", s.root.display(), rng.below(3));
        let mut text = rng.pick(STARTS).to_string();
        s.notify("textDocument/didOpen", json!({ "textDocument": { "uri": uri, "languageId": "rust", "version": 1, "text": text } }));
        for version in 2..OPERATIONS as i64 + 2 {
            match rng.below(14) {
                0..=4 => {
                    // An incremental edit, sometimes reversed or out of range.
                    let (a, al, ac) = position(&mut rng, &text);
                    let (b, bl, bc) = position(&mut rng, &text);
                    let piece: String = (0..rng.below(3)).map(|_| *rng.pick(PIECES)).collect();
                    let (x, y) = (to_offset(&text, al, ac, cols), to_offset(&text, bl, bc, cols));
                    text.replace_range(x.min(y)..x.max(y), &piece);
                    let change = json!({ "range": { "start": a, "end": b }, "text": piece });
                    s.notify("textDocument/didChange", json!({ "textDocument": { "uri": uri, "version": version }, "contentChanges": [change] }));
                    s.check_text(&mut id, &uri, &text, seed);
                }
                5 => {
                    text = rng.pick(STARTS).to_string();
                    s.notify("textDocument/didChange", json!({ "textDocument": { "uri": uri, "version": version }, "contentChanges": [{ "text": text }] }));
                    s.check_text(&mut id, &uri, &text, seed);
                }
                6..=7 => {
                    let (p, _, _) = position(&mut rng, &text);
                    id += 1;
                    s.request(json!(id), "textDocument/inlineCompletion", json!({ "textDocument": { "uri": uri }, "position": p, "context": { "triggerKind": 1 } }));
                    if rng.below(2) == 0 {
                        s.notify("$/cancelRequest", json!({ "id": id }));
                    }
                }
                8 => {
                    let (p, _, _) = position(&mut rng, &text);
                    id += 1;
                    let method = *rng.pick(&["patois/context", "textDocument/completion"]);
                    s.request(
                        json!(id),
                        method,
                        json!({ "textDocument": { "uri": uri }, "position": p }),
                    );
                }
                9 => {
                    let (a, _, _) = position(&mut rng, &text);
                    let (b, _, _) = position(&mut rng, &text);
                    id += 1;
                    let target = if rng.below(2) == 0 {
                        uri.clone()
                    } else {
                        format!("file://{}/src/store.rs", s.root.display())
                    };
                    s.request(json!(id), "patois/explain", json!({ "textDocument": { "uri": target }, "range": { "start": a, "end": b }, "summary": rng.below(4) == 0 }));
                }
                10 => {
                    // Wrong types and unknown methods.
                    id += 1;
                    let (method, params) = rng.pick(&[
                        ("textDocument/inlineCompletion", json!(5)),
                        ("textDocument/inlineCompletion", json!({ "textDocument": { "uri": 3 }, "position": { "line": -1, "character": "x" } })),
                        ("patois/context", json!({ "textDocument": { "uri": "file:///not/open.rs" }, "position": { "line": 0, "character": 0 } })),
                        ("patois/explain", json!({ "textDocument": { "uri": "untitled:1" }, "range": null })),
                        ("patois/nope", json!([])),
                        ("initialize", json!({})),
                        ("textDocument/didOpen", json!({})),
                    ]).clone();
                    s.request(json!(format!("s{id}")), method, params);
                    s.notify("textDocument/didChange", json!({ "textDocument": { "uri": 1 } }));
                }
                11 => {
                    // Malformed frames; those with a readable id are answered.
                    match rng.below(5) {
                        0 => s.raw(b"Content-Length: 7\r\n\r\n{broken"),
                        1 => s.raw(b"Content-Length: x\r\n\r\n"),
                        2 => s.raw(b"X-Nothing: 1\r\n\r\n"),
                        3 => {
                            id += 1;
                            let bad = json!({ "jsonrpc": "2.0", "id": id, "method": 7 });
                            s.pending.push(json!(id));
                            s.requests += 1;
                            s.raw(&frame(&bad));
                        }
                        _ => s.raw(&frame(&json!({ "jsonrpc": "1.0", "id": 1.5, "method": "x" }))),
                    }
                }
                12 => {
                    // Files appear and disappear on disk (the watcher re-indexes).
                    let p = s.root.join(format!("src/disk_{}.rs", rng.below(2)));
                    if p.exists() {
                        std::fs::remove_file(&p).unwrap();
                    } else {
                        std::fs::write(&p, "pub fn on_disk() -> u8 { 1 }\n").unwrap();
                    }
                    id += 1;
                    s.request(json!(id), "patois/status", json!({}));
                }
                _ => {
                    s.notify("textDocument/didClose", json!({ "textDocument": { "uri": uri } }));
                    s.notify("textDocument/didOpen", json!({ "textDocument": { "uri": uri, "languageId": "rust", "version": version, "text": text } }));
                    s.check_text(&mut id, &uri, &text, seed);
                }
            }
        }
        s.settle(seed);
        s.notify("textDocument/didClose", json!({ "textDocument": { "uri": uri } }));
    }
    id += 1;
    s.request(json!(id), "shutdown", Value::Null);
    s.settle(seed0);
    s.notify("exit", Value::Null);
    assert!(s.client.child.wait().unwrap().success(), "a clean exit");
    (s.messages, s.requests)
}

#[test]
fn the_server_answers_every_request_and_keeps_documents_in_step() {
    let mut total = (0, 0);
    for (cols, offered, seed) in [
        (Cols::Utf8, &["utf-8", "utf-16"][..], 1_000),
        (Cols::Utf16, &["utf-16"][..], 2_000),
        // A client that offers only UTF-32 gets the mandatory UTF-16.
        (Cols::Utf16, &["utf-32"][..], 3_000),
    ] {
        let (m, r) = run_session(cols, offered, seed);
        total = (total.0 + m, total.1 + r);
    }
    eprintln!(
        "fuzz: {} sequences, {} messages, {} requests, all answered",
        3 * SEQUENCES,
        total.0,
        total.1
    );
}
