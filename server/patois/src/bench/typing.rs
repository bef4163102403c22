//! `patois bench typing`: a person types the lines the last N commits added, through the
//! real `patois serve` with the real model, at a human pace. After every key: didChange,
//! `$/cancelRequest` of the pending request and a new inline completion request, as VS
//! Code does; `patois/cursor` where no key follows within [`CURSOR_REST_MS`] and the
//! accepted item's command after a Tab, as the VS Code extension does. A ghost text is
//! visible when the answer for the current text arrived, or an earlier one still matches
//! what was typed since; the person presses Tab as soon as the visible ghost text's first
//! line is the rest of the line.

use crate::bench::blocks::{mine_blocks, Block};
use crate::bench::complete::{Task, TimeSplit};
use crate::bench::generate::pct;
use anyhow::Result;
use patois_testkit::lsp::Client;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct TypingArgs {
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// The lines these last first-parent commits added are typed (the server sees the
    /// repository as of before them).
    #[arg(long, default_value_t = 10)]
    pub commits: usize,
    /// At most this many lines, spread evenly over the commits.
    #[arg(long, default_value_t = 30)]
    pub max_lines: usize,
    /// Milliseconds between keys.
    #[arg(long, default_value_t = 150)]
    pub interval_ms: u64,
    /// The pause at the start of each line before its first key.
    #[arg(long, default_value_t = 600)]
    pub think_ms: u64,
    /// The model [default: the model in effect].
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// The server's latency budget [default: its setting].
    #[arg(long)]
    pub budget_ms: Option<u64>,
    /// The server's full prompt in tokens (`prompt_tokens` in a `patois.toml` written into
    /// the typed checkout) [default: its setting].
    #[arg(long)]
    pub prompt_tokens: Option<usize>,
    /// More settings for the server, in `patois.toml`'s syntax (written into the typed
    /// checkout with `prompt_tokens`), e.g. `fim_order = "suffix_first"`.
    #[arg(long)]
    pub settings: Option<String>,
    /// Run one busy process beside the server (as a compiler or rust-analyzer would).
    #[arg(long)]
    pub busy: bool,
    /// Type blocks of consecutive lines a commit added, one after the other in the same
    /// document, instead of single lines each in a freshly opened one.
    #[arg(long)]
    pub blocks: bool,
    /// The patois binary to type through [default: this one] (to compare builds).
    #[arg(long)]
    pub server: Option<PathBuf>,
}

/// What the session measured.
#[derive(Default)]
struct Tally {
    chars: usize,
    saved: usize,
    /// Of `chars` and `saved`, those of lines that are comments (prose the model can
    /// rarely guess, however fast).
    comment_chars: usize,
    comment_saved: usize,
    lines: usize,
    accepted: usize,
    wrong_shown: usize,
    keys: usize,
    keys_unanswered: usize,
    /// Answers to the text as it was when asked (ms).
    latency: Vec<f64>,
    /// From a line's first request to its first ghost text, where one was shown (ms).
    first: Vec<f64>,
    /// From `$/cancelRequest` to the request's answer (ms).
    cancel_answered: Vec<f64>,
    /// The longest write of a message to the server's input (ms).
    longest_write: f64,
}

/// A request in flight: the characters typed when it was sent, when, and when cancelled.
struct Pending {
    typed: usize,
    sent: Instant,
    cancelled: Option<Instant>,
}

/// How long the cursor rests before the VS Code extension sends `patois/cursor`
/// (`CURSOR_REST_MS` in `editors/vscode/src/extension.ts`).
const CURSOR_REST_MS: u64 = 300;

/// The ghost text on screen: the answer for `typed` characters, and the command the
/// client runs when it is accepted.
struct Ghost {
    typed: usize,
    text: String,
    command: Value,
}

/// One line being typed through the client.
struct Line<'a> {
    uri: String,
    row: u32,
    col: u32,
    target: Vec<char>,
    /// Whether the line is a comment.
    comment: bool,
    typed: usize,
    pending: HashMap<i64, Pending>,
    ghost: Option<Ghost>,
    answered_now: bool,
    /// When the line's first request was sent, until its first ghost text is shown.
    waiting_since: Option<Instant>,
    /// The wrong ghost texts' first lines shown, with the characters typed then.
    wrong: Vec<(usize, String)>,
    tally: &'a mut Tally,
}

impl<'a> Line<'a> {
    fn new(uri: &str, (row, col): (u32, u32), target: &str, tally: &'a mut Tally) -> Line<'a> {
        Line {
            uri: uri.to_string(),
            row,
            col,
            target: target.chars().collect(),
            comment: is_comment(uri, target),
            typed: 0,
            pending: HashMap::new(),
            ghost: None,
            answered_now: false,
            waiting_since: Some(Instant::now()),
            wrong: Vec::new(),
            tally,
        }
    }

    fn send(&mut self, c: &mut Client, msg: Value) {
        let t = Instant::now();
        c.send(msg);
        self.tally.longest_write = self.tally.longest_write.max(ms(t.elapsed()));
    }

    /// The cursor's line and column (UTF-16), after what was typed.
    fn cursor(&self) -> (u32, u32) {
        (self.row, self.col + utf16_len(&self.target[..self.typed]))
    }

    /// The cursor's position as LSP writes it.
    fn position(&self) -> Value {
        let (line, character) = self.cursor();
        json!({ "line": line, "character": character })
    }

    fn ask(&mut self, c: &mut Client) {
        let params = json!({ "textDocument": { "uri": self.uri }, "position": self.position(), "context": { "triggerKind": 2 } });
        let sent = Instant::now();
        let id = c.request_async("textDocument/inlineCompletion", params);
        self.tally.longest_write = self.tally.longest_write.max(ms(sent.elapsed()));
        self.pending.insert(id, Pending { typed: self.typed, sent, cancelled: None });
        self.answered_now = false;
    }

    /// The rest of the line the person still has to type.
    fn rest(&self) -> String {
        self.target[self.typed..].iter().collect()
    }

    /// What the ghost text shows now, when it still matches what was typed since.
    fn visible(&self) -> Option<String> {
        let g = self.ghost.as_ref()?;
        let since: String = self.target[g.typed..self.typed].iter().collect();
        g.text.strip_prefix(since.as_str()).map(str::to_string)
    }

    /// Takes in an answer; true when the person accepts the ghost text it shows.
    fn answer(&mut self, v: &Value, at: Instant) -> bool {
        let Some(id) = v["id"].as_i64() else { return false };
        let Some(p) = self.pending.remove(&id) else { return false };
        if let Some(cancelled) = p.cancelled {
            self.tally.cancel_answered.push(ms(at.saturating_duration_since(cancelled)));
        }
        if v.get("error").is_some() {
            return false;
        }
        self.tally.latency.push(ms(at.saturating_duration_since(p.sent)));
        self.answered_now |= p.typed == self.typed;
        let item = &v["result"]["items"][0];
        let text = item["insertText"].as_str().unwrap_or("").to_string();
        if text.trim().is_empty() || p.typed > self.typed {
            return false;
        }
        self.ghost = Some(Ghost { typed: p.typed, text, command: item["command"].clone() });
        let Some(shown) = self.visible() else {
            self.ghost = None;
            return false;
        };
        if let Some(since) = self.waiting_since.take() {
            self.tally.first.push(ms(at.saturating_duration_since(since)));
        }
        let first = shown.lines().next().unwrap_or("");
        let rest = self.rest();
        if first.trim_end() == rest.trim_end() {
            return true;
        }
        if !rest.starts_with(first) {
            self.tally.wrong_shown += 1;
            if self.wrong.last().is_none_or(|(_, w)| w != first) {
                self.wrong.push((self.typed, first.to_string()));
            }
        }
        false
    }

    /// The cursor rests: `patois/cursor` at its position.
    fn rest_cursor(&mut self, c: &mut Client) {
        let params = json!({ "textDocument": { "uri": self.uri }, "position": self.position() });
        self.send(c, json!({ "jsonrpc": "2.0", "method": "patois/cursor", "params": params }));
    }

    /// Takes in messages until `until`; true when the person pressed Tab meanwhile.
    fn wait(&mut self, c: &mut Client, until: Instant) -> bool {
        while let Some((v, at)) = c.next_before(until) {
            if self.answer(&v, at) {
                return true;
            }
        }
        false
    }

    /// Types one key: the edit, the cancellation of what is pending, a new request.
    fn key(&mut self, c: &mut Client, version: &mut i64) {
        self.tally.keys += 1;
        self.tally.keys_unanswered += usize::from(!self.answered_now);
        let ch = self.target[self.typed];
        let edit = insertion(&self.uri, version, self.cursor(), &ch.to_string());
        self.send(c, edit);
        let now = Instant::now();
        let ids: Vec<i64> =
            self.pending.iter().filter(|(_, p)| p.cancelled.is_none()).map(|(id, _)| *id).collect();
        for id in ids {
            self.send(
                c,
                json!({ "jsonrpc": "2.0", "method": "$/cancelRequest", "params": { "id": id } }),
            );
            if let Some(p) = self.pending.get_mut(&id) {
                p.cancelled = Some(now);
            }
        }
        self.typed += 1;
        self.ask(c);
    }
}

/// Whether `text`, a line of the document `uri`, is a line comment of its language.
fn is_comment(uri: &str, text: &str) -> bool {
    patois_syntax::language_for_path(Path::new(uri))
        .is_some_and(|l| text.trim_start().starts_with(l.line_comment))
}

fn utf16_len(chars: &[char]) -> u32 {
    chars.iter().map(|c| c.len_utf16() as u32).sum()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The document's URI and language for `path` under `root`.
fn document(root: &Path, path: &str) -> (String, &'static str) {
    let uri = format!("file://{}", root.join(path).display());
    let lang = patois_syntax::language_for_path(Path::new(path)).map_or("plaintext", |l| l.name);
    (uri, lang)
}

/// Types `t`'s line in a freshly opened document; what it saved goes to `tally`.
fn type_line(
    c: &mut Client,
    root: &Path,
    t: &Task,
    args: &TypingArgs,
    version: &mut i64,
    tally: &mut Tally,
) {
    let (uri, lang) = document(root, &t.path);
    *version += 1;
    c.notify("textDocument/didOpen", json!({ "textDocument": { "uri": uri, "languageId": lang, "version": *version, "text": t.text } }));
    let before = &t.text[..t.cursor];
    let row = before.matches('\n').count() as u32;
    let line_start = patois_types::line_start_at(before, before.len());
    let col = t.text[line_start..t.cursor].encode_utf16().count() as u32;
    // The document closes at once: an accepted item's command would prepare nothing.
    type_on(c, Line::new(&uri, (row, col), &t.target, tally), args, version);
    c.notify("textDocument/didClose", json!({ "textDocument": { "uri": uri } }));
}

/// Types `b`'s lines one after the other in a freshly opened document, an Enter and the
/// next line's indentation between them; a line accepted with Tab is inserted whole.
fn type_block(
    c: &mut Client,
    root: &Path,
    b: &Block,
    args: &TypingArgs,
    version: &mut i64,
    tally: &mut Tally,
) {
    let (uri, lang) = document(root, &b.path);
    *version += 1;
    c.notify("textDocument/didOpen", json!({ "textDocument": { "uri": uri, "languageId": lang, "version": *version, "text": b.text } }));
    for (i, (indent, content)) in b.lines.iter().enumerate() {
        let row = b.row + i as u32;
        let col = indent.encode_utf16().count() as u32;
        let typed = if content.is_empty() {
            Typed { chars: 0, command: None }
        } else {
            type_on(c, Line::new(&uri, (row, col), content, tally), args, version)
        };
        // Tab: the ghost text's rest is inserted and its command run; then Enter.
        let rest: String = content.chars().skip(typed.chars).collect();
        let end = col + content.encode_utf16().count() as u32;
        if !rest.is_empty() {
            let at = end - rest.encode_utf16().count() as u32;
            c.send(insertion(&uri, version, (row, at), &rest));
        }
        if let Some(command) = &typed.command {
            run_command(c, command);
        }
        if let Some((indent, _)) = b.lines.get(i + 1) {
            c.send(insertion(&uri, version, (row, end), &format!("\n{indent}")));
        }
    }
    c.notify("textDocument/didClose", json!({ "textDocument": { "uri": uri } }));
}

/// The didChange that inserts `text` at `(line, character)` of `uri`, as the next version.
fn insertion(uri: &str, version: &mut i64, (line, character): (u32, u32), text: &str) -> Value {
    *version += 1;
    let at = json!({ "line": line, "character": character });
    let change = json!({ "range": { "start": at, "end": at }, "text": text });
    let params =
        json!({ "textDocument": { "uri": uri, "version": *version }, "contentChanges": [change] });
    json!({ "jsonrpc": "2.0", "method": "textDocument/didChange", "params": params })
}

/// Types `line` key by key until the person accepts a ghost text or has typed it all;
/// returns how it ended, and waits for the answers still owed.
fn type_on(c: &mut Client, mut line: Line, args: &TypingArgs, version: &mut i64) -> Typed {
    line.tally.chars += line.target.len();
    line.tally.lines += 1;
    line.ask(c);
    let mut next_key = Instant::now() + Duration::from_millis(args.think_ms);
    let rest = Duration::from_millis(CURSOR_REST_MS);
    let mut rests_at = (args.think_ms > CURSOR_REST_MS).then(|| Instant::now() + rest);
    let accepted = loop {
        if let Some(at) = rests_at.take().filter(|at| *at < next_key) {
            if line.wait(c, at) {
                break true;
            }
            line.rest_cursor(c);
        }
        if line.wait(c, next_key) {
            break true;
        }
        if line.typed == line.target.len() {
            break false;
        }
        line.key(c, version);
        next_key += Duration::from_millis(args.interval_ms);
        if line.typed == line.target.len() {
            next_key = Instant::now();
        }
        rests_at = (args.interval_ms > CURSOR_REST_MS).then(|| Instant::now() + rest);
    };
    let command = accepted.then(|| line.ghost.as_ref().map(|g| g.command.clone())).flatten();
    let saved = if accepted { line.target.len() - line.typed } else { 0 };
    line.tally.accepted += usize::from(accepted);
    line.tally.saved += saved;
    if line.comment {
        line.tally.comment_chars += line.target.len();
        line.tally.comment_saved += saved;
    }
    if super::verbose() {
        let line_text: String = line.target.iter().collect();
        let how = if accepted { format!("Tab after {}", line.typed) } else { "typed".into() };
        eprintln!("  {how} of {}: {line_text}", line.target.len());
        for (typed, wrong) in line.wrong.iter().rev().take(3).rev() {
            eprintln!("      shown after {typed}: {wrong}");
        }
    }
    // The answers still owed (cancelled ones included: their time is measured).
    let drain = Instant::now() + Duration::from_secs(10);
    while !line.pending.is_empty() && Instant::now() < drain {
        line.wait(c, (Instant::now() + Duration::from_millis(50)).min(drain));
    }
    Typed { chars: line.typed, command: command.filter(Value::is_object) }
}

/// How a line ended: the characters typed, and the accepted ghost text's command.
struct Typed {
    chars: usize,
    command: Option<Value>,
}

/// Runs an accepted item's command as the client does once it has inserted the text
/// (its answer is not waited for).
fn run_command(c: &mut Client, command: &Value) {
    let params = json!({ "command": command["command"], "arguments": command["arguments"] });
    c.request_async("workspace/executeCommand", params);
}

/// The CPU as `lscpu` names it, its vector extensions, and the load when measured.
pub fn cpu_line() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &str| patois_models::cpuinfo_field(&info, name).unwrap_or_default();
    let flags = field("flags");
    let vector: Vec<&str> = flags
        .split_whitespace()
        .filter(|f| matches!(*f, "avx2" | "avx512f" | "avx512_vnni" | "avx512_bf16" | "fma"))
        .collect();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load = load.split_whitespace().next().unwrap_or("?");
    format!(
        "{} ({}), {cores} cores usable, load average {load}",
        field("model name"),
        vector.join(" ")
    )
}

pub fn run(args: TypingArgs) -> Result<()> {
    let split = TimeSplit::new(&args.dir, args.commits, args.max_lines, "typing")?;
    println!("  cpu: {}", cpu_line());
    let busy = args
        .busy
        .then(|| std::process::Command::new("sh").args(["-c", "while :; do :; done"]).spawn())
        .transpose()?;
    let exe = match &args.server {
        Some(p) => p.clone(),
        None => std::env::current_exe()?,
    };
    let prompt_tokens = args.prompt_tokens.map(|n| format!("prompt_tokens = {n}"));
    let toml: Vec<String> = prompt_tokens.into_iter().chain(args.settings.clone()).collect();
    if !toml.is_empty() {
        std::fs::write(split.base_dir.join("patois.toml"), toml.join("\n") + "\n")?;
    }
    let mut c = Client::start(&exe, &split.base_dir);
    let mut options = json!({ "model": args.model.as_ref().map(|m| m.display().to_string()).unwrap_or_default() });
    if let Some(b) = args.budget_ms {
        options["latencyBudgetMs"] = json!(b);
    }
    c.request("initialize", json!({ "processId": null, "rootUri": format!("file://{}", split.base_dir.display()), "capabilities": { "window": { "workDoneProgress": true } }, "initializationOptions": options }));
    c.notify("initialized", json!({}));
    c.wait("indexing to finish", patois_testkit::lsp::is_progress_end);
    c.wait("the model to load", |v| {
        v["method"] == "patois/status"
            && (v["params"]["model"].is_object() || v["params"]["modelError"].is_string())
    });
    let mut tally = Tally::default();
    let mut version = 0;
    if args.blocks {
        let blocks = mine_blocks(&split.repo, &split.range, args.max_lines)?;
        let lines: usize = blocks.iter().map(Block::typed_lines).sum();
        println!("  {} blocks of consecutive added lines, {lines} lines to type", blocks.len());
        for b in &blocks {
            type_block(&mut c, &split.base_dir, b, &args, &mut version, &mut tally);
        }
    } else {
        for t in &split.tasks {
            type_line(&mut c, &split.base_dir, t, &args, &mut version, &mut tally);
        }
    }
    let status = c.request("patois/status", json!({}));
    if let Some(mut b) = busy {
        let _ = b.kill();
        let _ = b.wait();
    }
    report(&mut tally, &status, &args);
    Ok(())
}

fn report(t: &mut Tally, status: &Value, args: &TypingArgs) {
    let p = |v: &mut Vec<f64>, q: f64| if v.is_empty() { f64::NAN } else { pct(v, q) };
    println!(
        "  typed {} lines ({} characters) at {} ms per key, {} ms at each line's start{}",
        t.lines,
        t.chars,
        args.interval_ms,
        args.think_ms,
        if args.busy { ", one busy process beside the server" } else { "" }
    );
    println!(
        "  keystroke savings {:.1}% ({} of {} characters); {} lines accepted with Tab; {} wrong ghost texts shown",
        100.0 * t.saved as f64 / t.chars.max(1) as f64,
        t.saved,
        t.chars,
        t.accepted,
        t.wrong_shown
    );
    let code_chars = t.chars - t.comment_chars;
    println!(
        "  comment lines: {} characters ({:.0}%), savings {:.1}% there; other lines {:.1}%",
        t.comment_chars,
        100.0 * t.comment_chars as f64 / t.chars.max(1) as f64,
        100.0 * t.comment_saved as f64 / t.comment_chars.max(1) as f64,
        100.0 * (t.saved - t.comment_saved) as f64 / code_chars.max(1) as f64
    );
    println!(
        "  answer latency p50 {:.0} ms, p95 {:.0} ms ({} answers); first ghost text on a line p50 {:.0} ms ({} lines had one); {} of {} keys found no answer for the text before the next key",
        p(&mut t.latency, 0.5),
        p(&mut t.latency, 0.95),
        t.latency.len(),
        p(&mut t.first, 0.5),
        t.first.len(),
        t.keys_unanswered,
        t.keys
    );
    println!(
        "  cancelled requests answered p50 {:.1} ms, max {:.1} ms ({}); longest write to the server's input {:.1} ms",
        p(&mut t.cancel_answered, 0.5),
        p(&mut t.cancel_answered, 1.0),
        t.cancel_answered.len(),
        t.longest_write
    );
    let speed = &status["speed"];
    println!(
        "  server: model {}, measured {:.0} prompt tokens/s and {:.0} tokens/s written, budget {} ms, last prompt {}/{} tokens",
        status["model"]["path"].as_str().unwrap_or("none"),
        speed["prefill"].as_f64().unwrap_or(f64::NAN),
        speed["decode"].as_f64().unwrap_or(f64::NAN),
        status["latencyBudgetMs"],
        status["promptWindow"],
        status["fullPromptWindow"]
    );
    let runs = &status["modelRuns"];
    for (kind, what) in [("answers", "for requests"), ("warm", "warming"), ("ahead", "ahead")] {
        let r = &runs[kind];
        let n = |k: &str| r[k].as_u64().unwrap_or(0);
        println!(
            "  model runs {what}: {}, prompts {:.0} tokens on average, {:.0}% of them computed (not in the cache); {} cancelled, {} stopped at the deadline, {} with a prompt cut by the budget; per run {:.0} ms retrieval and prompt, {:.0} ms prefill, {:.0} ms decoding",
            n("runs"),
            n("promptTokens") as f64 / n("runs").max(1) as f64,
            100.0 * n("computedTokens") as f64 / n("promptTokens").max(1) as f64,
            n("cancelled"),
            n("timedOut"),
            n("shrunk"),
            r["prepareMs"].as_f64().unwrap_or(0.0) / n("runs").max(1) as f64,
            r["prefillMs"].as_f64().unwrap_or(0.0) / n("runs").max(1) as f64,
            r["decodeMs"].as_f64().unwrap_or(0.0) / n("runs").max(1) as f64,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::is_comment;

    #[test]
    fn a_comment_line_is_one_its_language_comments_out() {
        assert!(is_comment("file:///r/src/a.rs", "    /// Docs of the item."));
        assert!(!is_comment("file:///r/src/a.rs", "let x = 1; // trailing"));
        assert!(is_comment("file:///r/a.py", "  # note"));
        assert!(!is_comment("file:///r/a.py", "// not a Python comment"));
        assert!(!is_comment("file:///r/notes.txt", "// no language"));
    }
}
