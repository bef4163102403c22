//! End to end: the real `patois serve` process over stdio, a real git repository,
//! a client speaking JSON-RPC with LSP framing.

use patois_generate::write::{make_constant_model_dir, tiny_config};
use patois_testkit::lsp::Client;
use patois_testkit::Fixture;
use serde_json::{json, Value};
use std::io::Write;

fn uri(root: &std::path::Path, rel: &str) -> String {
    format!("file://{}", root.join(rel).display())
}

/// A repository with a store module, a caller, and a model big enough that a long
/// prompt takes a while (so a cancel arrives during it), which always says `word`.
fn fixture() -> (Fixture, String) {
    let fx = Fixture::git();
    fx.write(
        "src/store.rs",
        "/// Reads a value by key.\npub fn fetch_value(key: &str) -> Option<u32> {\n    key.len().checked_sub(1).map(|n| n as u32)\n}\n",
    );
    fx.write("src/app.rs", "use crate::store::fetch_value;\n\npub fn run() -> u32 {\n    fetch_value(\"abc\").unwrap_or(0)\n}\n");
    fx.commit("Add store and app (#12)", "ann", 1_000);
    let shape = patois_generate::Config {
        hidden_size: 256,
        intermediate_size: 512,
        num_hidden_layers: 4,
        ..tiny_config(600)
    };
    let corpus = [fx.read("src/store.rs"), fx.read("src/app.rs")].concat();
    let word = make_constant_model_dir(
        &fx.root().join(".patois/model"),
        std::iter::repeat_n(corpus.as_str(), 20),
        &shape,
        // Digits: the repeats have no letter, so they are not cut as a loop, and their
        // count shows which max_tokens won.
        "32",
    )
    .unwrap();
    // No latency budget: completions are compared exactly, whatever the machine's speed.
    fx.write(
        "patois.toml",
        "max_tokens = 16\nprompt_tokens = 1000\nbudget = 400\nlatency_budget_ms = 0\n",
    );
    (fx, word)
}

/// A server on `root` whose model sleeps `delay_ms` after every token (and no installed
/// catalogue model), initialized, with its index built and its model loaded.
fn start_slow(root: &std::path::Path, delay_ms: &str) -> Client {
    let exe = std::path::Path::new(env!("CARGO_BIN_EXE_patois"));
    let home = root.join(".no-installed-models");
    let delay = std::path::Path::new(delay_ms);
    let env = [("PATOIS_HOME", home.as_path()), ("PATOIS_TEST_TOKEN_DELAY_MS", delay)];
    let mut c = Client::start_with_env(exe, root, &env);
    initialize(&mut c, root);
    c.wait("index progress end", patois_testkit::lsp::is_progress_end);
    c.wait("the model", |v| v["method"] == "patois/status" && v["params"]["model"].is_object());
    c
}

/// Shuts the server down as a client does; it exits cleanly.
fn shut_down(mut c: Client) {
    c.request("shutdown", Value::Null);
    c.notify("exit", Value::Null);
    assert!(c.child.wait().unwrap().success());
}

fn initialize(c: &mut Client, root: &std::path::Path) -> Value {
    let r = c.request(
        "initialize",
        json!({
            "processId": null,
            "rootUri": format!("file://{}", root.display()),
            "capabilities": { "general": { "positionEncodings": ["utf-8", "utf-16"] }, "window": { "workDoneProgress": true } },
            "initializationOptions": { "patois": { "maxTokens": 12 } }
        }),
    );
    c.notify("initialized", json!({}));
    r
}

#[test]
fn lsp_end_to_end() {
    let (fx, word) = fixture();
    let root = fx.root().canonicalize().unwrap();
    let exe = std::path::Path::new(env!("CARGO_BIN_EXE_patois"));
    // No installed models: the test's own built-in model is the one in effect.
    let home = root.join(".no-installed-models");
    let mut c = Client::start_with_env(exe, &root, &[("PATOIS_HOME", &home)]);
    let init = initialize(&mut c, &root);
    let caps = &init["capabilities"];
    assert_eq!(caps["positionEncoding"], "utf-8");
    assert_eq!(caps["inlineCompletionProvider"], true);
    assert_eq!(caps["textDocumentSync"]["change"], 2, "incremental sync");
    assert_eq!(caps["codeActionProvider"]["resolveProvider"], true);

    // Indexing runs in the background with work-done progress.
    c.wait("index progress end", |v| {
        v["method"] == "$/progress" && v["params"]["value"]["kind"] == "end"
    });
    assert!(c
        .seen
        .iter()
        .any(|v| v["method"] == "$/progress" && v["params"]["value"]["kind"] == "begin"));
    c.wait("status notification", |v| {
        v["method"] == "patois/status" && v["params"]["model"].is_object()
    });

    // Unsaved text with non-ASCII characters before the cursor (columns are UTF-8 bytes here).
    let main = uri(&root, "src/main.rs");
    let text = "use crate::store::fetch_value;\n\nfn main() {\n    let é = fetch_value(\"ü\");\n    let n = \n}\n";
    c.notify("textDocument/didOpen", json!({ "textDocument": { "uri": main, "languageId": "rust", "version": 1, "text": text } }));
    let line4 = "    let n = ";
    let pos = json!({ "line": 4, "character": line4.len() });
    let r = c.request("textDocument/inlineCompletion", json!({ "textDocument": { "uri": main }, "position": pos, "context": { "triggerKind": 2 } }));
    let items = r["items"].as_array().expect("an inline completion list");
    assert_eq!(items.len(), 1, "{r}");
    // maxTokens 12 from the editor's settings wins over patois.toml's 16.
    assert_eq!(items[0]["insertText"], word.repeat(12), "{r}");
    assert_eq!(items[0]["range"]["start"], pos);
    let ctx =
        c.request("patois/context", json!({ "textDocument": { "uri": main }, "position": pos }));
    let ctx_text = ctx.to_string();
    assert!(ctx_text.contains("src/store.rs") && ctx_text.contains("fetch_value"), "{ctx_text}");

    // An incremental edit: "n" → "count" on line 4 (UTF-8 columns).
    c.notify(
        "textDocument/didChange",
        json!({ "textDocument": { "uri": main, "version": 2 }, "contentChanges": [{ "range": { "start": { "line": 4, "character": 8 }, "end": { "line": 4, "character": 9 } }, "text": "count" }] }),
    );
    let pos2 = json!({ "line": 4, "character": "    let count = ".len() });
    let held = c.request("patois/documentText", json!({ "uri": main }));
    assert_eq!(held, json!(text.replace("let n = ", "let count = ")), "the edit was applied");
    let r = c.request("textDocument/inlineCompletion", json!({ "textDocument": { "uri": main }, "position": pos2, "context": { "triggerKind": 2 } }));
    assert_eq!(r["items"][0]["range"]["start"], pos2, "{r}");
    assert_eq!(r["items"][0]["insertText"], word.repeat(12), "{r}");

    // Rename the function (definition and caller) in other files and save: the next
    // completion's context has the new name and not the old.
    let ends = c.progress_ends();
    for f in ["src/store.rs", "src/app.rs"] {
        std::fs::write(root.join(f), fx.read(f).replace("fetch_value", "load_value")).unwrap();
        c.notify("textDocument/didSave", json!({ "textDocument": { "uri": uri(&root, f) } }));
    }
    c.wait_progress_ends_over(ends);
    let edit = |from: u32, to: u32, text: &str| json!({ "range": { "start": { "line": 0, "character": from }, "end": { "line": 0, "character": to } }, "text": text });
    c.notify("textDocument/didChange", json!({ "textDocument": { "uri": main, "version": 3 }, "contentChanges": [edit(18, 29, "load_value")] }));
    let held = c.request("patois/documentText", json!({ "uri": main }));
    assert!(held.as_str().unwrap().starts_with("use crate::store::load_value;\n"), "{held}");
    let r = c.request("textDocument/inlineCompletion", json!({ "textDocument": { "uri": main }, "position": pos2, "context": { "triggerKind": 2 } }));
    assert!(r["items"].is_array(), "{r}");
    let ctx =
        c.request("patois/context", json!({ "textDocument": { "uri": main }, "position": pos2 }));
    let texts: Vec<String> = ctx["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["text"].as_str().unwrap().to_string())
        .collect();
    assert!(texts.iter().any(|t| t.contains("load_value")), "{texts:#?}");
    assert!(texts.iter().all(|t| !t.contains("fetch_value")), "stale name in context: {texts:#?}");

    // A file created on disk without the editor knowing: the server's watcher re-indexes.
    let files_before = c.request("patois/status", json!({}))["files"].as_u64().unwrap();
    let ends = c.progress_ends();
    fx.write("src/extra.rs", "pub fn brand_new_helper() -> u32 { 7 }\n");
    c.wait_progress_ends_over(ends);
    let mut files_after = c.request("patois/status", json!({}))["files"].as_u64().unwrap();
    while files_after == files_before {
        // The first update may have run before the write finished; the watcher runs another.
        let ends = c.progress_ends();
        c.wait_progress_ends_over(ends);
        files_after = c.request("patois/status", json!({}))["files"].as_u64().unwrap();
    }
    assert_eq!(files_after, files_before + 1);

    // Cancellation: a long prompt, cancelled right away, answers RequestCancelled,
    // and the server keeps serving.
    let long: String =
        (0..150).map(|i| format!("fn helper_{i}(x: u32) -> u32 {{ x + {i} }}\n")).collect();
    let long_doc = format!("{long}fn tail() {{\n    let v = \n}}\n");
    let long_uri = uri(&root, "src/long.rs");
    c.notify("textDocument/didOpen", json!({ "textDocument": { "uri": long_uri, "languageId": "rust", "version": 1, "text": long_doc } }));
    let tail_pos = json!({ "line": 151, "character": 12 });
    let id = c.request_async("textDocument/inlineCompletion", json!({ "textDocument": { "uri": long_uri }, "position": tail_pos, "context": { "triggerKind": 2 } }));
    c.notify("$/cancelRequest", json!({ "id": id }));
    let r = c.response(id);
    assert_eq!(r["error"]["code"], -32800, "{r}");
    let ok = c.request("patois/status", json!({}));
    assert!(ok["files"].as_u64().unwrap() >= 2);

    // Explain: citations point at real lines.
    let store = uri(&root, "src/store.rs");
    let x = c.request("patois/explain", json!({ "textDocument": { "uri": store }, "range": { "start": { "line": 1, "character": 0 }, "end": { "line": 1, "character": 5 } }, "summary": false }));
    assert_eq!(x["symbol"], "load_value");
    let md = x["markdown"].as_str().unwrap();
    assert!(md.contains("src/store.rs:2-4") && md.contains("(#12)"), "{md}");
    let callers =
        x["sections"].as_array().unwrap().iter().find(|s| s["title"] == "Callers").unwrap()
            ["entries"]
            .as_array()
            .unwrap()
            .clone();
    assert!(!callers.is_empty(), "{x}");
    for e in callers {
        let (path, start) = (
            e["citation"]["path"].as_str().unwrap(),
            e["citation"]["startLine"].as_u64().unwrap() as usize,
        );
        let line = std::fs::read_to_string(root.join(path))
            .unwrap()
            .lines()
            .nth(start - 1)
            .unwrap()
            .to_string();
        assert!(!line.trim().is_empty(), "{path}:{start} is a real line");
    }
    // Ask: the sources of a question about a name are its definition and uses, every [n]
    // the answer cites is one of them; a name nowhere in the index is "not found".
    let a = c.request(
        "patois/ask",
        json!({ "question": "Who calls `load_value`?", "partialResultToken": "ask-1" }),
    );
    let sources = a["sources"].as_array().unwrap();
    let label = |s: &Value| s["label"].as_str().unwrap().to_string();
    assert!(
        sources.iter().any(|s| s["citation"]["path"] == "src/store.rs"
            && label(s).starts_with("definition of `load_value`")),
        "{a}"
    );
    assert!(sources.iter().any(|s| label(s) == "uses `load_value`"), "{a}");
    for n in a["cited"].as_array().unwrap() {
        assert!((1..=sources.len() as u64).contains(&n.as_u64().unwrap()), "{a}");
    }
    assert!(a["answer"].is_string() != a["note"].is_string(), "an answer or why not: {a}");
    let none =
        c.request("patois/ask", json!({ "question": "Where is `frobnicate_widgets` defined?" }));
    assert!(none["answer"].is_null(), "{none}");
    assert!(
        none["note"].as_str().unwrap().starts_with("Not found: `frobnicate_widgets`"),
        "{none}"
    );
    // Next edit: a rename at one use makes the old name's other uses the next edits.
    let ren = uri(&root, "src/ren.rs");
    let ren_text = "use crate::store::load_value;\nfn a() -> u32 { load_value(\"x\") }\nfn b() -> u32 { load_value(\"y\") }\n";
    c.notify("textDocument/didOpen", json!({ "textDocument": { "uri": ren, "languageId": "rust", "version": 1, "text": ren_text } }));
    let renamed = ren_text.replacen("{ load_value(\"x\")", "{ read_value(\"x\")", 1);
    c.notify("textDocument/didChange", json!({ "textDocument": { "uri": ren, "version": 2 }, "contentChanges": [{ "text": renamed }] }));
    let next = c.request("patois/nextEdit", json!({ "textDocument": { "uri": ren } }));
    let edits = next["edits"].as_array().unwrap();
    let first = &edits[0];
    assert_eq!(first["uri"], ren, "{next}");
    assert_eq!(
        first["range"],
        json!({ "start": { "line": 0, "character": 18 }, "end": { "line": 0, "character": 28 } }),
        "{next}"
    );
    assert_eq!(first["newText"], "read_value");
    assert!(edits.iter().any(|e| e["range"]["start"]["line"] == 2), "the other call: {next}");
    assert!(
        edits.iter().any(|e| e["citation"]["path"] == "src/store.rs"),
        "the definition: {next}"
    );
    // On the other call's line, the inline completion is that edit, replacing the old name.
    let inline = c.request("textDocument/inlineCompletion", json!({ "textDocument": { "uri": ren }, "position": { "line": 2, "character": 16 }, "context": { "triggerKind": 1 } }));
    let item = &inline["items"][0];
    assert_eq!(item["insertText"], "read_value", "{inline}");
    assert_eq!(
        item["range"],
        json!({ "start": { "line": 2, "character": 16 }, "end": { "line": 2, "character": 26 } }),
        "{inline}"
    );
    // The same edits as one code action, for clients without next edits of their own.
    let actions = c.request("textDocument/codeAction", json!({ "textDocument": { "uri": ren }, "range": { "start": { "line": 1, "character": 0 }, "end": { "line": 1, "character": 0 } }, "context": { "diagnostics": [] } }));
    let apply =
        actions.as_array().unwrap().iter().find(|a| a["kind"] == "refactor.rewrite").unwrap();
    assert!(
        apply["title"].as_str().unwrap().contains("`load_value` was renamed to `read_value`"),
        "{apply}"
    );
    let changed = apply["edit"]["changes"][ren.as_str()].as_array().unwrap();
    assert_eq!(changed.len(), 2, "the import and the other call: {apply}");
    let id = c.request_async("patois/ask", json!({ "question": "why?", "since": "last week" }));
    assert_eq!(c.response(id)["error"]["code"], -32602, "a date that is not one is refused");
    let actions = c.request("textDocument/codeAction", json!({ "textDocument": { "uri": store }, "range": { "start": { "line": 1, "character": 0 }, "end": { "line": 1, "character": 0 } }, "context": { "diagnostics": [] } }));
    assert_eq!(actions[0]["title"], "Explain with patois");
    let resolved = c.request("codeAction/resolve", actions[0].clone());
    assert_eq!(resolved["command"]["command"], "patois.explain");

    // Bad input gets JSON-RPC errors, not a crash.
    let unknown = c.request_async("patois/nope", json!({}));
    assert_eq!(c.response(unknown)["error"]["code"], -32601);
    c.stdin.write_all(b"Content-Length: 9\r\n\r\n{not json").unwrap();
    c.stdin.flush().unwrap();
    let log = c.wait("a log message", |v| {
        v["method"] == "window/logMessage" && v.to_string().contains("not JSON")
    });
    assert_eq!(log["params"]["type"], 2, "a warning: {log}");
    let bad = br#"{"jsonrpc":"2.0","id":4242,"method":17}"#;
    c.stdin.write_all(format!("Content-Length: {}\r\n\r\n", bad.len()).as_bytes()).unwrap();
    c.stdin.write_all(bad).unwrap();
    c.stdin.flush().unwrap();
    let err = c.response(4242);
    assert_eq!(err["error"]["code"], -32600, "an invalid request, answered: {err}");
    let over = patois_lsp::frames::MAX_FRAME + 1;
    c.stdin.write_all(format!("Content-Length: {over}\r\n\r\n").as_bytes()).unwrap();
    c.stdin.write_all(&vec![b' '; over]).unwrap();
    c.stdin.flush().unwrap();
    c.wait("the oversized frame noted", |v| v.to_string().contains("over patois's limit"));
    let ok = c.request("patois/status", json!({}));
    assert!(ok["files"].is_u64(), "still serving after malformed input: {ok}");

    c.request("shutdown", Value::Null);
    c.notify("exit", Value::Null);
    let status = c.child.wait().unwrap();
    assert!(status.success());
}

/// `train_when_idle`: training starts once the editor is idle, is stopped by the next
/// notification before it is handled, continues when idle again, and its adapter (with
/// the GGUF export llama.cpp applies) replaces the missing one; the status reports it.
#[cfg(target_os = "linux")]
#[test]
fn idle_training_pauses_at_a_keystroke_and_installs_its_adapter() {
    let fx = Fixture::git();
    for i in 0..8 {
        fx.write(
            &format!("src/m{i}.rs"),
            format!("/// Adds {i}.\npub fn add_{i}(value: u32) -> u32 {{\n    value + {i}\n}}\n"),
        );
        fx.commit(&format!("Add m{i}"), "ann", 1_000 + i as i64);
    }
    let root = fx.root().canonicalize().unwrap();
    let base = root.join("base.gguf");
    let corpus = fx.read("src/m1.rs");
    patois_generate::write::make_constant_gguf(
        &base,
        std::iter::repeat_n(corpus.as_str(), 20),
        &tiny_config(400),
        "value",
    )
    .unwrap();
    let exe = std::path::Path::new(env!("CARGO_BIN_EXE_patois"));
    let home = root.join(".no-installed-models");
    let mut c = Client::start_with_env(exe, &root, &[("PATOIS_HOME", &home)]);
    c.request(
        "initialize",
        json!({
            "processId": null,
            "rootUri": format!("file://{}", root.display()),
            "capabilities": { "window": { "workDoneProgress": true } },
            "initializationOptions": { "patois": {
                "model": base, "trainWhenIdle": true, "idleSeconds": 2, "idleTrainingMinutes": 0.1
            } }
        }),
    );
    c.notify("initialized", json!({}));
    let running = c.wait("idle training running", |v| {
        v["method"] == "patois/status" && v["params"]["training"]["state"] == "running"
    });
    let pid = running["params"]["training"]["pid"].as_u64().expect("the trainer's pid");
    assert!(c.seen.iter().any(|v| v["method"] == "$/progress"
        && v["params"]["value"]["title"] == "patois: training while idle"));

    // A keystroke: the trainer is stopped before the edit is handled.
    let doc = uri(&root, "src/m1.rs");
    c.notify("textDocument/didOpen", json!({ "textDocument": { "uri": doc, "languageId": "rust", "version": 1, "text": corpus } }));
    let status = c.request("patois/status", json!({}));
    assert_eq!(status["training"]["state"], "paused", "{status}");
    let mut state = None;
    for _ in 0..50 {
        state = patois_testkit::lsp::process_state(pid as u32);
        if state == Some('T') {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(state, Some('T'), "the trainer process {pid} is stopped");

    // Idle again: it continues, finishes, and its adapter is put in place.
    let done = c.wait("idle training finished", |v| {
        v["method"] == "patois/status"
            && matches!(v["params"]["training"]["state"].as_str(), Some("finished" | "failed"))
    });
    let training = &done["params"]["training"];
    assert_eq!(training["state"], "finished", "{training}");
    assert_eq!(training["replaced"], true, "no adapter was in place: {training}");
    assert!(training["steps"].as_u64().unwrap() > 0, "{training}");
    let house = root.join(".patois/adapters/house");
    assert!(house.join("adapter_config.json").exists());
    assert!(house.join("adapter.gguf").exists(), "the GGUF export llama.cpp applies");
    assert!(!root.join(".patois/adapters/house.next").exists());
    let status = c.request("patois/status", json!({}));
    assert_eq!(status["adapter"], json!(house), "{status}");

    shut_down(c);
}

/// A generation that would run for minutes (a model that sleeps after every token, and a
/// large max_tokens) blocks nothing: other documents' edits and requests are answered
/// while it runs, a newer request for its document answers it RequestCancelled, so does
/// `$/cancelRequest`, and accepting a ghost text is taken while the model is busy.
#[test]
fn a_slow_generation_never_keeps_the_server_from_its_input() {
    let (fx, _word) = fixture();
    fx.write("patois.toml", "max_tokens = 4000\nlatency_budget_ms = 0\n");
    let root = fx.root().canonicalize().unwrap();
    let mut c = start_slow(&root, "200");
    let slow = uri(&root, "src/slow.rs");
    let text = "fn main() {\n    let n = \n}\n";
    c.notify("textDocument/didOpen", json!({ "textDocument": { "uri": slow, "languageId": "rust", "version": 1, "text": text } }));
    let other = uri(&root, "src/other.rs");
    c.notify("textDocument/didOpen", json!({ "textDocument": { "uri": other, "languageId": "rust", "version": 1, "text": "fn f() {}\n" } }));
    let ask = |c: &mut Client| {
        let pos = json!({ "line": 1, "character": 12 });
        c.request_async("textDocument/inlineCompletion", json!({ "textDocument": { "uri": slow }, "position": pos, "context": { "triggerKind": 2 } }))
    };
    let first = ask(&mut c);
    // Give the model time to be inside the generation (a pause, not a measurement).
    std::thread::sleep(std::time::Duration::from_millis(500));
    // Messages keep being read and answered while it runs: an edit elsewhere, its text,
    // the status, and an accepted ghost text.
    let edit = json!({ "range": { "start": { "line": 0, "character": 8 }, "end": { "line": 0, "character": 8 } }, "text": "1" });
    c.notify(
        "textDocument/didChange",
        json!({ "textDocument": { "uri": other, "version": 2 }, "contentChanges": [edit] }),
    );
    assert_eq!(c.request("patois/documentText", json!({ "uri": other })), json!("fn f() {1}\n"));
    assert!(c.request("patois/status", json!({}))["files"].is_u64());
    let accepted = json!({ "command": "patois.accepted", "arguments": [other, { "line": 0, "character": 9 }, "2"] });
    assert_eq!(c.request("workspace/executeCommand", accepted), Value::Null);
    // A newer request for the same document: the first is answered at once, cancelled.
    let second = ask(&mut c);
    let r = c.response(first);
    assert_eq!(r["error"]["code"], -32800, "superseded: {r}");
    // `$/cancelRequest` answers the second, which is inside its generation too.
    std::thread::sleep(std::time::Duration::from_millis(500));
    c.notify("$/cancelRequest", json!({ "id": second }));
    let r = c.response(second);
    assert_eq!(r["error"]["code"], -32800, "cancelled: {r}");
    shut_down(c);
}

/// An explanation's summary goes out as the model writes it (`$/progress` with the
/// request's `partialResultToken`), and `$/cancelRequest` stops the model mid-summary.
#[test]
fn an_explanation_streams_its_summary_and_a_cancel_stops_it() {
    let (fx, word) = fixture();
    let root = fx.root().canonicalize().unwrap();
    let mut c = start_slow(&root, "100");
    let store = uri(&root, "src/store.rs");
    let range =
        json!({ "start": { "line": 1, "character": 0 }, "end": { "line": 1, "character": 5 } });
    let params = json!({ "textDocument": { "uri": store }, "range": range, "partialResultToken": "summary-1" });
    let id = c.request_async("patois/explain", params);
    let partial = c.wait("the summary so far", |v| {
        v["method"] == "$/progress" && v["params"]["token"] == "summary-1"
    });
    let text = partial["params"]["value"]["text"].as_str().unwrap();
    assert!(text.contains(word.trim()), "{partial}");
    c.notify("$/cancelRequest", json!({ "id": id }));
    let r = c.response(id);
    assert_eq!(r["error"]["code"], -32800, "cancelled: {r}");
    shut_down(c);
}
