//! `patois bench lsp`: a typing session replayed through the real server.

use anyhow::Result;
use patois_testkit::lsp::Client;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Resident memory of a process: (now, peak) in MiB, from /proc (Linux).
fn resident_mib(pid: u32) -> Option<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<f64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb / 1024.0)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// What one typing session measured.
struct Session {
    /// The first completion in the freshly opened file (ms).
    fresh: f64,
    /// Every keystroke's completion (ms).
    times: Vec<f64>,
    /// Keystrokes that got ghost text.
    shown: usize,
    /// Resident memory after indexing and loading the model, and (now, peak) at the end.
    rss_ready: Option<(f64, f64)>,
    rss_end: Option<(f64, f64)>,
}

/// Types lines of `file` one character per request, measuring each request.
fn session(
    root: &Path,
    file: &str,
    requests: usize,
    cache: bool,
    model: Option<&Path>,
    env: &[(&str, &Path)],
    remote: Option<&(String, String)>,
) -> Result<Session> {
    let exe = std::env::current_exe()?;
    let mut c = Client::start_with_env(&exe, root, env);
    let mut options = json!({ "cache": cache, "model": model.map(|m| m.display().to_string()).unwrap_or_default() });
    if let Some((endpoint, name)) = remote {
        options["backend"] = json!("openai");
        options["endpoint"] = json!(endpoint);
        options["modelName"] = json!(name);
    }
    c.request(
        "initialize",
        json!({ "processId": null, "rootUri": format!("file://{}", root.display()), "capabilities": { "window": { "workDoneProgress": true } }, "initializationOptions": options }),
    );
    c.notify("initialized", json!({}));
    c.wait("indexing to finish", patois_testkit::lsp::is_progress_end);
    // The model loads after indexing; the status that follows says how that went.
    c.wait("the model to load", |v| {
        v["method"] == "patois/status"
            && (v["params"]["model"].is_object() || v["params"]["modelError"].is_string())
    });
    let rss_ready = resident_mib(c.child.id());
    let full = std::fs::read_to_string(root.join(file))?;
    let lines: Vec<&str> = full.lines().collect();
    let uri = format!("file://{}", root.join(file).display());
    // Start in the middle of the file, with the typed lines removed.
    let first = lines.len() / 2;
    let typed: Vec<&str> = lines[first..].iter().copied().filter(|l| l.trim().len() > 8).collect();
    let mut doc: Vec<String> = lines[..first].iter().map(|s| s.to_string()).collect();
    let tail: Vec<String> = vec!["}".to_string()];
    let text = |doc: &[String]| format!("{}\n{}\n", doc.join("\n"), tail.join("\n"));
    doc.push(String::new());
    c.notify("textDocument/didOpen", json!({ "textDocument": { "uri": uri, "languageId": "rust", "version": 1, "text": text(&doc) } }));
    let mut times = Vec::new();
    let mut shown = 0;
    let mut version = 1;
    // The first completion in the freshly opened file (nothing cached for it yet).
    let pos = json!({ "line": doc.len() as u32 - 1, "character": 0 });
    let t = Instant::now();
    c.request(
        "textDocument/inlineCompletion",
        json!({ "textDocument": { "uri": uri }, "position": pos, "context": { "triggerKind": 1 } }),
    );
    let fresh = t.elapsed().as_secs_f64() * 1e3;
    'outer: for line in typed {
        for ch in line.chars() {
            if times.len() >= requests {
                break 'outer;
            }
            let row = doc.len() as u32 - 1;
            let col = doc.last().unwrap().encode_utf16().count() as u32;
            doc.last_mut().unwrap().push(ch);
            version += 1;
            let edit = json!({ "range": { "start": { "line": row, "character": col }, "end": { "line": row, "character": col } }, "text": ch.to_string() });
            c.notify("textDocument/didChange", json!({ "textDocument": { "uri": uri, "version": version }, "contentChanges": [edit] }));
            let pos = json!({ "line": row, "character": col + ch.len_utf16() as u32 });
            let t = Instant::now();
            let r = c.request("textDocument/inlineCompletion", json!({ "textDocument": { "uri": uri }, "position": pos, "context": { "triggerKind": 2 } }));
            times.push(t.elapsed().as_secs_f64() * 1e3);
            let first = &r["items"][0]["insertText"];
            shown += first.as_str().is_some_and(|t| !t.trim().is_empty()) as usize;
        }
        let row = doc.len() as u32 - 1;
        let col = doc.last().unwrap().encode_utf16().count() as u32;
        doc.push(String::new());
        version += 1;
        let edit = json!({ "range": { "start": { "line": row, "character": col }, "end": { "line": row, "character": col } }, "text": "\n" });
        c.notify(
            "textDocument/didChange",
            json!({ "textDocument": { "uri": uri, "version": version }, "contentChanges": [edit] }),
        );
    }
    let rss_end = resident_mib(c.child.id());
    c.request("shutdown", serde_json::Value::Null);
    c.notify("exit", serde_json::Value::Null);
    Ok(Session { fresh, times, shown, rss_ready, rss_end })
}

fn mib(m: Option<(f64, f64)>) -> String {
    m.map_or("?".into(), |(now, peak)| format!("{now:.0} MiB (peak {peak:.0})"))
}

pub fn run(
    dir: &Path,
    requests: usize,
    model: Option<PathBuf>,
    remote: Option<(String, String)>,
) -> Result<()> {
    let root = patois_index::repo_root(dir)?;
    let index = patois_index::Index::open(&root, &root.join(patois_index::DEFAULT_DIR))?;
    index.update(&Default::default(), &patois_index::Quiet)?;
    // A Rust file of about 1,000 tokens (3 to 6 kB).
    let file = index
        .with_manifest(|m| {
            m.files
                .iter()
                .filter(|(p, e)| {
                    e.language.as_deref() == Some("rust")
                        && (3000..6000).contains(&e.size)
                        && !p.contains("test")
                })
                .map(|(p, _)| p.clone())
                .next()
        })
        .ok_or_else(|| anyhow::anyhow!("no Rust file of 3 to 6 kB to type in"))?;
    drop(index);
    println!("bench lsp: typing {requests} characters of {file} through `patois serve`");
    let files = patois_index::Index::open(&root, &root.join(patois_index::DEFAULT_DIR))?
        .with_manifest(|m| m.files.len());
    if let Some(remote) = &remote {
        // The same model, typed through twice: in this process, and on the server.
        for (label, via) in [("local", None), ("remote", Some(remote))] {
            let s = session(&root, &file, requests, true, model.as_deref(), &[], via)?;
            let mut t = s.times;
            let p = |t: &mut Vec<f64>, q: f64| crate::bench::generate::pct(t, q);
            println!(
                "  {label:<7} keystroke p50 {:.0} ms, p95 {:.0} ms, max {:.0} ms over {} requests; \
                 first completion in the opened file {:.0} ms; {} got ghost text",
                p(&mut t, 0.5),
                p(&mut t, 0.95),
                p(&mut t, 1.0),
                t.len(),
                s.fresh,
                s.shown
            );
        }
        return Ok(());
    }
    for (label, cache) in [("with caches", true), ("without caches", false)] {
        let s = session(&root, &file, requests, cache, model.as_deref(), &[], None)?;
        let (fresh, mut t, shown) = (s.fresh, s.times, s.shown);
        let p = |t: &mut Vec<f64>, q: f64| crate::bench::generate::pct(t, q);
        println!(
            "  {label:<15} keystroke p50 {:.0} ms, p95 {:.0} ms, max {:.0} ms over {} requests \
             (goals p50 < 250, p95 < 600); first completion in the opened file {fresh:.0} ms \
             (goal < 4,000); {shown} of the requests got ghost text; {} answered within 5 ms \
             (from the caches)",
            p(&mut t, 0.5),
            p(&mut t, 0.95),
            p(&mut t, 1.0),
            t.len(),
            t.iter().filter(|ms| **ms < 5.0).count()
        );
        println!(
            "  {:<15} resident memory ({files} files): {} after indexing and loading the model, \
             {} after the requests (goal < 1,024 MiB with the 0.5B model)",
            "",
            mib(s.rss_ready),
            mib(s.rss_end)
        );
    }
    // The same session with no model at all (no installed or built-in model to find).
    let empty = tempfile::tempdir()?;
    let no_model = empty.path().join("no-such-model.gguf");
    let s = session(
        &root,
        &file,
        requests,
        true,
        Some(&no_model),
        &[("PATOIS_HOME", empty.path())],
        None,
    )?;
    println!(
        "  {:<15} resident memory: {} after indexing, {} after {} requests (goal < 300 MiB)",
        "without a model",
        mib(s.rss_ready),
        mib(s.rss_end),
        s.times.len()
    );
    Ok(())
}
