//! Generation on an OpenAI-compatible server: the real `patois serve` against a real
//! llama-cpp-python server (`pip install 'llama-cpp-python[server]'`; scripts/test.sh
//! installs it) started here on 127.0.0.1, serving a GGUF model our code writes.

use patois_generate::write::{make_constant_gguf, tiny_config};
use patois_testkit::lsp::Client;
use patois_testkit::Fixture;
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

const KEY: &str = "s3cret-key";

/// `python3 -m llama_cpp.server` on a free port, killed when dropped; what it prints
/// (the requests it answered among it) goes to `log`.
struct Server {
    child: Child,
    port: u16,
    log: tempfile::NamedTempFile,
}

impl Server {
    fn start(model: &Path) -> Server {
        let log = tempfile::NamedTempFile::new().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let python = std::env::var("PATOIS_PYTHON").unwrap_or_else(|_| "python3".into());
        let child = Command::new(python)
            .args(["-m", "llama_cpp.server", "--host", "127.0.0.1", "--model_alias", "tiny"])
            .args(["--n_ctx", "2048", "--api_key", KEY, "--port", &port.to_string()])
            .arg("--model")
            .arg(model)
            .stdout(log.reopen().unwrap())
            .stderr(log.reopen().unwrap())
            .spawn()
            .expect("python3 runs (scripts/test.sh installs llama-cpp-python[server])");
        let server = Server { child, port, log };
        server.wait_ready();
        server
    }

    /// What the server printed so far.
    fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }

    /// Waits until `GET /v1/models` answers 200.
    fn wait_ready(&self) {
        use std::io::{Read, Write};
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(90) {
            if let Ok(mut tcp) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
                let get = format!(
                    "GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {KEY}\r\nConnection: close\r\n\r\n"
                );
                let mut answer = String::new();
                if tcp.write_all(get.as_bytes()).is_ok()
                    && tcp.read_to_string(&mut answer).is_ok()
                    && answer.starts_with("HTTP/1.1 200")
                {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("llama_cpp.server did not start; is llama-cpp-python[server] installed?");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `patois serve` session whose API key is in the environment variable `key_var`.
fn session(root: &Path, key_var: &str) -> Client {
    let exe = Path::new(env!("CARGO_BIN_EXE_patois"));
    let home = root.join(".no-installed-models");
    let mut c = Client::start_with_env(exe, root, &[("PATOIS_HOME", &home)]);
    c.request(
        "initialize",
        json!({ "processId": null, "rootUri": format!("file://{}", root.display()), "capabilities": {},
                "initializationOptions": { "apiKeyEnv": key_var } }),
    );
    c.notify("initialized", json!({}));
    c
}

fn complete(c: &mut Client, uri: &str, line: u32, col: u32) -> Value {
    let id = c.request_async(
        "textDocument/inlineCompletion",
        json!({ "textDocument": { "uri": uri }, "position": { "line": line, "character": col }, "context": { "triggerKind": 1 } }),
    );
    c.response(id)
}

#[test]
fn completions_come_from_the_server_and_from_the_local_model_when_it_goes_away() {
    let python = std::env::var("PATOIS_PYTHON").unwrap_or_else(|_| "python3".into());
    let present = patois_testkit::runs(&python, &["-c", "import llama_cpp.server"]);
    let install = "llama-cpp-python[server] (pip install 'llama-cpp-python[server]==0.3.36')";
    if !patois_testkit::tool_ready("the inference-server test", present, install) {
        return;
    }
    let fx = Fixture::store_and_app();
    fx.commit("Store and app (#3)", "ann", 1_000);
    let models = tempfile::tempdir().unwrap();
    let model = models.path().join("tiny.gguf");
    let corpus = fx.read("src/store.rs") + &fx.read("src/app.rs");
    let word = make_constant_gguf(
        &model,
        std::iter::repeat_n(corpus.as_str(), 20),
        &tiny_config(600),
        // Digits: the repeats have no letter, so they are not cut as a loop.
        "32",
    )
    .unwrap();
    let server = Server::start(&model);
    fx.write(
        "patois.toml",
        format!(
            "backend = \"openai\"\nendpoint = \"{}\"\nmodel_name = \"tiny\"\nmodel = \"{}\"\nmax_tokens = 6\n\
             latency_budget_ms = 0\n",
            server.endpoint(),
            model.display()
        ),
    );
    let root = fx.root().canonicalize().unwrap();
    // Keys are read from the variable `apiKeyEnv` names (inherited by `patois serve`).
    std::env::set_var("PATOIS_TEST_GOOD_KEY", KEY);
    std::env::set_var("PATOIS_TEST_BAD_KEY", "wrong");

    // A wrong API key: a clear note, no ghost text, no error per keystroke.
    let mut bad = session(&root, "PATOIS_TEST_BAD_KEY");
    let main = format!("file://{}/src/main.rs", root.display());
    let text = "use crate::store::fetch_value;\n\nfn main() {\n    let n = \n}\n";
    bad.notify("textDocument/didOpen", json!({ "textDocument": { "uri": main, "languageId": "rust", "version": 1, "text": text } }));
    bad.wait("the model", |v| v["method"] == "patois/status" && v["params"]["model"].is_object());
    let r = complete(&mut bad, &main, 3, 12);
    assert_eq!(r["result"]["items"], json!([]), "{r}");
    let note = bad.wait("a note on the key", |v| {
        v["method"] == "window/logMessage" && v.to_string().contains("HTTP 401")
    });
    assert!(note.to_string().contains("API key"), "{note}");
    drop(bad);

    let mut c = session(&root, "PATOIS_TEST_GOOD_KEY");
    c.notify("textDocument/didOpen", json!({ "textDocument": { "uri": main, "languageId": "rust", "version": 1, "text": text } }));
    let status = c.wait("the remote model", |v| {
        v["method"] == "patois/status" && v["params"]["model"].is_object()
    });
    let goes_to = status["params"]["promptsGoTo"].as_str().unwrap().to_string();
    assert!(goes_to.contains(&server.endpoint()) && goes_to.contains("tiny"), "{goes_to}");
    assert_eq!(status["params"]["model"]["backend"], "openai", "{status}");

    // A completion through the server, its context cited.
    let r = complete(&mut c, &main, 3, 12);
    assert_eq!(r["result"]["items"][0]["insertText"], word.repeat(6), "{r}");
    let ctx = c.request(
        "patois/context",
        json!({ "textDocument": { "uri": main }, "position": { "line": 3, "character": 12 } }),
    );
    assert!(ctx.to_string().contains("src/store.rs"), "{ctx}");

    // A question goes to the server's chat endpoint as messages: the server applies the
    // served model's chat template.
    assert!(!server.log().contains("/v1/chat/completions"));
    let a = c.request("patois/ask", json!({ "question": "Who calls `fetch_value`?" }));
    assert!(!a["sources"].as_array().unwrap().is_empty(), "{a}");
    let log = server.log();
    assert!(log.contains("POST /v1/chat/completions"), "{a}\n{log}");

    // Cancelled at once: answered (cancelled, or done first), and the session goes on.
    let id = c.request_async("textDocument/inlineCompletion", json!({ "textDocument": { "uri": main }, "position": { "line": 3, "character": 11 }, "context": { "triggerKind": 1 } }));
    c.notify("$/cancelRequest", json!({ "id": id }));
    let r = c.response(id);
    assert!(r["error"]["code"] == -32800 || r["result"].is_object(), "{r}");

    let status = c.request("patois/status", json!({}));
    assert_eq!(status["remoteNote"], Value::Null, "the server answered: {status}");
    let early = c
        .seen
        .iter()
        .find(|v| v["method"] == "window/logMessage" && v.to_string().contains("unreachable"));
    assert!(early.is_none(), "{early:?}");

    // The server goes away mid-typing: the local model completes, and one note says so.
    drop(server);
    let r = complete(&mut c, &main, 3, 10);
    assert_eq!(r["result"]["items"][0]["insertText"], word.repeat(6), "{r}");
    let note = c.wait("a note on the server", |v| {
        v["method"] == "window/logMessage" && v.to_string().contains("unreachable")
    });
    assert!(note.to_string().contains("local model"), "{note}");
    let status = c.request("patois/status", json!({}));
    assert!(status["remoteNote"].as_str().unwrap().contains("unreachable"), "{status}");
    let r = complete(&mut c, &main, 3, 9);
    assert_eq!(r["result"]["items"][0]["insertText"], word.repeat(6), "{r}");
    let notes = c
        .seen
        .iter()
        .filter(|v| v.to_string().contains("unreachable") && v["method"] == "window/logMessage")
        .count();
    assert_eq!(notes, 1, "one note, not one per keystroke");
}
