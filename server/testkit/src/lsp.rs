//! A small blocking LSP client: JSON-RPC with LSP framing (the server's own,
//! `patois_lsp::frames`) over a child process; for the end-to-end tests and the benchmarks.

use patois_lsp::frames::content_length;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// A blocking LSP client over a child process's stdio (tests and `patois bench lsp`).
pub struct Client {
    pub child: Child,
    pub stdin: ChildStdin,
    rx: Receiver<(Value, Instant)>,
    next_id: i64,
    /// Everything received, in order.
    pub seen: Vec<Value>,
}

impl Client {
    /// Starts `exe serve` in `root`.
    pub fn start(exe: &std::path::Path, root: &std::path::Path) -> Client {
        Client::start_with_env(exe, root, &[])
    }

    /// Starts `exe serve` in `root` with extra environment variables.
    pub fn start_with_env(
        exe: &std::path::Path,
        root: &std::path::Path,
        env: &[(&str, &std::path::Path)],
    ) -> Client {
        let mut child = Command::new(exe)
            .arg("serve")
            .envs(env.iter().map(|(k, v)| (*k, *v)))
            .current_dir(root)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start patois serve");
        let stdin = child.stdin.take().unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let (tx, rx) = channel();
        std::thread::spawn(move || loop {
            let mut len = 0usize;
            loop {
                let mut line = String::new();
                if out.read_line(&mut line).unwrap_or(0) == 0 {
                    return;
                }
                let line = line.trim();
                if line.is_empty() {
                    break;
                }
                if let Some(l) = content_length(line) {
                    len = l.expect("the server writes valid Content-Length headers");
                }
            }
            let mut body = vec![0; len];
            // The server stopped mid-message (killed when the client is dropped).
            if out.read_exact(&mut body).is_err() {
                return;
            }
            if tx.send((serde_json::from_slice(&body).unwrap(), Instant::now())).is_err() {
                return;
            }
        });
        Client { child, stdin, rx, next_id: 1, seen: Vec::new() }
    }

    pub fn send(&mut self, v: Value) {
        self.stdin.write_all(&frame(&v)).unwrap();
        self.stdin.flush().unwrap();
    }

    pub fn notify(&mut self, method: &str, params: Value) {
        self.send(json!({ "jsonrpc": "2.0", "method": method, "params": params }));
    }

    pub fn request_async(&mut self, method: &str, params: Value) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        self.send(json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }));
        id
    }

    /// Waits for a message matching `pred` (possibly one already received).
    #[track_caller]
    pub fn wait(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        if let Some(v) = self.seen.iter().find(|v| pred(v)).cloned() {
            return v;
        }
        loop {
            let v = self.next(what);
            if pred(&v) {
                return v;
            }
        }
    }

    /// Reads the next message, answering server requests on the way.
    #[track_caller]
    pub fn next(&mut self, what: &str) -> Value {
        match self.rx.recv_timeout(Duration::from_secs(120)) {
            Ok((v, _)) => self.received(v),
            Err(RecvTimeoutError::Timeout) => {
                panic!("timed out waiting for {what}; got {:#?}", self.seen)
            }
            Err(RecvTimeoutError::Disconnected) => {
                panic!("server exited while waiting for {what}")
            }
        }
    }

    /// The next message with the time it arrived, if one arrives before `deadline`.
    pub fn next_before(&mut self, deadline: Instant) -> Option<(Value, Instant)> {
        let wait = deadline.saturating_duration_since(Instant::now());
        let (v, at) = self.rx.recv_timeout(wait).ok()?;
        Some((self.received(v), at))
    }

    /// Keeps `v`, answering it when it is a server-to-client request (progress create,
    /// registrations, showDocument).
    fn received(&mut self, v: Value) -> Value {
        if v.get("method").is_some() && v.get("id").is_some() {
            let id = v["id"].clone();
            self.send(json!({ "jsonrpc": "2.0", "id": id, "result": Value::Null }));
        }
        if std::env::var_os("PATOIS_TEST_TRACE").is_some() {
            eprintln!("<- {}", v.to_string().chars().take(200).collect::<String>());
        }
        self.seen.push(v.clone());
        v
    }

    #[track_caller]
    pub fn response(&mut self, id: i64) -> Value {
        self.wait(&format!("response {id}"), |v| v["id"] == json!(id) && v.get("method").is_none())
    }

    #[track_caller]
    pub fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.request_async(method, params);
        let r = self.response(id);
        assert!(r.get("error").is_none(), "{method} failed: {r}");
        r["result"].clone()
    }

    pub fn progress_ends(&self) -> usize {
        self.seen.iter().filter(|v| is_progress_end(v)).count()
    }

    /// Waits until more than `n` indexing runs have ended.
    #[track_caller]
    pub fn wait_progress_ends_over(&mut self, n: usize) {
        while self.progress_ends() <= n {
            self.next("an index update to finish");
        }
    }
}

impl Drop for Client {
    /// Ends the server and reaps it (a benchmark runs several in turn: no zombies).
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One message with its Content-Length header.
pub fn frame(v: &Value) -> Vec<u8> {
    patois_lsp::frames::frame(&serde_json::to_vec(v).expect("a JSON value serializes"))
}

/// The scheduler state letter of a Linux process (`R`, `S`, `T` for stopped…), from /proc.
pub fn process_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit(')').next()?.trim_start().chars().next()
}

/// A `$/progress` end notification.
pub fn is_progress_end(v: &Value) -> bool {
    v["method"] == "$/progress" && v["params"]["value"]["kind"] == "end"
}
