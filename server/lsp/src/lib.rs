//! The LSP layer: the only crate that knows LSP. A thin adapter over
//! [`patois_engine::Engine`]; long work runs on tokio's blocking pool.

pub mod client;
mod text;
pub use text::{apply, offset, position, Encoding};

use dashmap::DashMap;
use patois_engine::{Engine, Settings, Ticket};
use patois_index::{Index, Progress};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use tower_lsp_server::jsonrpc::{Error, ErrorCode, Result};
use tower_lsp_server::ls_types::notification::Notification;
use tower_lsp_server::ls_types::*;
use tower_lsp_server::{Client, LanguageServer, LspService, Server};

/// `patois/status`, sent when the index or model changes state.
pub enum StatusNotification {}
impl Notification for StatusNotification {
    type Params = Value;
    const METHOD: &'static str = "patois/status";
}

pub const EXPLAIN_COMMAND: &str = "patois.explain";
pub const REINDEX_COMMAND: &str = "patois.reindex";

struct Doc {
    text: String,
    rel: String,
}

pub struct Backend {
    client: Client,
    engine: OnceLock<Arc<Engine>>,
    root: OnceLock<PathBuf>,
    docs: DashMap<Uri, Doc>,
    encoding: AtomicU8,
    init_settings: Mutex<Settings>,
    client_watches: AtomicBool,
    indexing: AtomicBool,
    /// A re-index was asked for while one ran: run once more after it.
    reindex_again: AtomicBool,
    watcher: Mutex<Option<notify::RecommendedWatcher>>,
}

fn internal(e: impl std::fmt::Display) -> Error {
    Error { code: ErrorCode::InternalError, message: e.to_string().into(), data: None }
}

fn invalid(msg: impl Into<String>) -> Error {
    Error { code: ErrorCode::InvalidParams, message: msg.into().into(), data: None }
}

/// Runs blocking work off the async workers; a panic becomes an error response.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> Result<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(internal(format!("{e:#}"))),
        Err(e) => Err(internal(format!("patois hit an internal error (please report it): {e}"))),
    }
}

/// Cancels the ticket when the request future is dropped (`$/cancelRequest`).
struct CancelOnDrop(Ticket);
impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// Merges editor settings (`initializationOptions`, `workspace/didChangeConfiguration`)
/// over `base`. Accepts `{ "patois": {...} }` or the object itself.
pub fn merge_settings(base: &Settings, v: &Value) -> Settings {
    let v = v.get("patois").unwrap_or(v);
    let mut s = base.clone();
    if let Some(m) = v.get("model").and_then(Value::as_str) {
        s.model = if m.is_empty() { None } else { Some(PathBuf::from(m)) };
    }
    if let Some(a) = v.get("adapter").and_then(Value::as_str) {
        s.adapter = if a.is_empty() { None } else { Some(PathBuf::from(a)) };
    }
    for (k, slot) in [
        ("budget", &mut s.budget),
        ("maxTokens", &mut s.max_tokens),
        ("promptTokens", &mut s.prompt_tokens),
        ("maxDocumentBytes", &mut s.max_document_bytes),
    ] {
        if let Some(n) = v.get(k).and_then(Value::as_u64) {
            *slot = n as usize;
        }
    }
    if let Some(b) = v.get("backend").and_then(Value::as_str) {
        if let Ok(kind) = serde_json::from_value(Value::String(b.to_string())) {
            s.backend = kind;
        }
    }
    if let Some(c) = v.get("cache").and_then(Value::as_bool) {
        s.cache = c;
    }
    if let Some(l) = v.get("disabledLanguages").and_then(Value::as_array) {
        s.disabled_languages = l.iter().filter_map(|x| x.as_str().map(str::to_string)).collect();
    }
    s
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExplainParams {
    pub text_document: TextDocumentIdentifier,
    pub range: Range,
    /// Ask the model for a summary too (default true).
    #[serde(default)]
    pub summary: Option<bool>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusParams {}

struct ProgressBridge {
    tx: tokio::sync::mpsc::UnboundedSender<(u64, u64)>,
    done: std::sync::atomic::AtomicU64,
    total: std::sync::atomic::AtomicU64,
}
impl Progress for ProgressBridge {
    fn phase(&self, _name: &str, total: u64) {
        self.total.store(total, Ordering::Relaxed);
        self.done.store(0, Ordering::Relaxed);
    }
    fn inc(&self, n: u64) {
        let d = self.done.fetch_add(n, Ordering::Relaxed) + n;
        let t = self.total.load(Ordering::Relaxed).max(1);
        if d.is_multiple_of(64) || d == t {
            let _ = self.tx.send((d, t));
        }
    }
}

impl Backend {
    pub fn new(client: Client) -> Backend {
        Backend {
            client,
            engine: OnceLock::new(),
            root: OnceLock::new(),
            docs: DashMap::new(),
            encoding: AtomicU8::new(16),
            init_settings: Mutex::new(Settings::default()),
            client_watches: AtomicBool::new(false),
            indexing: AtomicBool::new(false),
            reindex_again: AtomicBool::new(false),
            watcher: Mutex::new(None),
        }
    }

    fn enc(&self) -> Encoding {
        if self.encoding.load(Ordering::Relaxed) == 8 {
            Encoding::Utf8
        } else {
            Encoding::Utf16
        }
    }

    fn engine(&self) -> Result<Arc<Engine>> {
        self.engine.get().cloned().ok_or_else(|| {
            invalid("patois has no workspace folder open; open a folder inside a repository")
        })
    }

    fn rel_path(&self, uri: &Uri) -> String {
        let p = uri
            .to_file_path()
            .map(|p| p.into_owned())
            .unwrap_or_else(|| PathBuf::from(uri.as_str()));
        match self.root.get().and_then(|r| p.strip_prefix(r).ok()) {
            Some(rel) => rel.to_string_lossy().replace('\\', "/"),
            None => p.to_string_lossy().replace('\\', "/"),
        }
    }

    async fn send_status(&self) {
        if let Ok(e) = self.engine() {
            let mut v = serde_json::to_value(e.status()).unwrap_or(Value::Null);
            v["indexing"] = json!(self.indexing.load(Ordering::SeqCst));
            self.client.send_notification::<StatusNotification>(v).await;
        }
    }

    /// Updates the index in the background with work-done progress; requests keep
    /// being served from the index as it was.
    async fn reindex(self: &Arc<Self>, title: &str) {
        let Ok(engine) = self.engine() else { return };
        if self.indexing.swap(true, Ordering::SeqCst) {
            self.reindex_again.store(true, Ordering::SeqCst);
            return;
        }
        let token = ProgressToken::String(format!("patois/index/{}", std::process::id()));
        let progress = match self.client.create_work_done_progress(token.clone()).await {
            Ok(()) => Some(
                self.client.progress(token, title.to_string()).with_percentage(0).begin().await,
            ),
            Err(_) => None,
        };
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let bridge = ProgressBridge { tx, done: 0.into(), total: 0.into() };
        let e2 = engine.clone();
        let job =
            tokio::task::spawn_blocking(move || e2.update_index(&Default::default(), &bridge));
        tokio::pin!(job);
        let result = loop {
            tokio::select! {
                r = &mut job => break r,
                Some((d, t)) = rx.recv() => {
                    if let Some(p) = &progress {
                        p.report_with_message(format!("{d}/{t}"), (d * 100 / t.max(1)) as u32).await;
                    }
                }
            }
        };
        let msg = match result {
            Ok(Ok(r)) => format!(
                "{} files, {} commits ({} parsed, {} new commits)",
                r.files, r.commits, r.parsed, r.new_commits
            ),
            Ok(Err(e)) => {
                self.client
                    .log_message(MessageType::ERROR, format!("patois: indexing failed: {e:#}"))
                    .await;
                "indexing failed".into()
            }
            Err(e) => format!("indexing crashed: {e}"),
        };
        if let Some(p) = progress {
            p.finish_with_message(msg.clone()).await;
        }
        self.client.log_message(MessageType::INFO, format!("patois: index {msg}")).await;
        self.indexing.store(false, Ordering::SeqCst);
        self.send_status().await;
        if self.reindex_again.swap(false, Ordering::SeqCst) {
            Box::pin(self.reindex("patois: updating the index")).await;
        }
    }

    /// Watches the working tree (and .git for HEAD moves) when the client does not.
    fn start_watcher(self: &Arc<Self>, root: &Path) {
        use notify::{RecursiveMode, Watcher};
        let me = Arc::downgrade(self);
        let handle = tokio::runtime::Handle::current();
        let pending = Arc::new(AtomicBool::new(false));
        let index_dir = root.join(patois_index::DEFAULT_DIR);
        let git_objects = root.join(".git").join("objects");
        // Build output and other ignored files change constantly and never enter the index.
        let mut gi = ignore::gitignore::GitignoreBuilder::new(root);
        gi.add(root.join(".gitignore"));
        gi.add(root.join(".patoisignore"));
        let ignored = gi.build().unwrap_or_else(|_| ignore::gitignore::Gitignore::empty());
        let root_dir = root.to_path_buf();
        let relevant = move |p: &Path| {
            p.starts_with(&root_dir)
                && !p.starts_with(&index_dir)
                && !p.starts_with(&git_objects)
                && !ignored.matched_path_or_any_parents(p, p.is_dir()).is_ignore()
        };
        let w = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
            let Ok(ev) = ev else { return };
            if !ev.paths.iter().any(|p| relevant(p)) || pending.swap(true, Ordering::SeqCst) {
                return;
            }
            let me = me.clone();
            let pending = pending.clone();
            handle.spawn(async move {
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                pending.store(false, Ordering::SeqCst);
                if let Some(me) = me.upgrade() {
                    me.reindex("patois: updating the index").await;
                }
            });
        });
        if let Ok(mut w) = w {
            if w.watch(root, RecursiveMode::Recursive).is_ok() {
                *self.watcher.lock().unwrap() = Some(w);
            }
        }
    }
}

/// The LanguageServer impl is on a newtype so background tasks can hold an `Arc`.
pub struct Server_(pub Arc<Backend>);

impl Server_ {
    async fn inline_completion(
        &self,
        p: InlineCompletionParams,
    ) -> Result<Option<InlineCompletionResponse>> {
        self.0.inline_completion(p).await
    }
    async fn explain(&self, p: ExplainParams) -> Result<Value> {
        self.0.explain(p).await
    }
    async fn status(&self, p: StatusParams) -> Result<Value> {
        self.0.status(p).await
    }
    async fn context(&self, p: TextDocumentPositionParams) -> Result<Value> {
        self.0.context(p).await
    }
}

impl LanguageServer for Server_ {
    async fn initialize(&self, params: InitializeParams) -> Result<InitializeResult> {
        let b = &self.0;
        let utf8 = params
            .capabilities
            .general
            .as_ref()
            .and_then(|g| g.position_encodings.as_ref())
            .is_some_and(|encs| encs.contains(&PositionEncodingKind::UTF8));
        b.encoding.store(if utf8 { 8 } else { 16 }, Ordering::Relaxed);
        let watches = params
            .capabilities
            .workspace
            .as_ref()
            .and_then(|w| w.did_change_watched_files.as_ref())
            .and_then(|d| d.dynamic_registration)
            .unwrap_or(false);
        b.client_watches.store(watches, Ordering::Relaxed);
        #[allow(deprecated)]
        let root = params
            .workspace_folders
            .as_ref()
            .and_then(|f| f.first())
            .and_then(|f| f.uri.to_file_path().map(|p| p.into_owned()))
            .or_else(|| {
                params.root_uri.as_ref().and_then(|u| u.to_file_path().map(|p| p.into_owned()))
            });
        if let Some(root) = root {
            let root = patois_index::repo_root(&root).map_err(internal)?;
            let mut settings = Settings::from_repo(&root).map_err(internal)?;
            if let Some(opts) = &params.initialization_options {
                settings = merge_settings(&settings, opts);
            }
            *b.init_settings.lock().unwrap() = settings.clone();
            let index_dir = root.join(patois_index::DEFAULT_DIR);
            // Best effort: a read-only .git only means git may list .patois/.
            let _ = patois_index::exclude_default_dir(&root);
            let index = Index::open(&root, &index_dir).map_err(internal)?;
            let _ = b.engine.set(Arc::new(Engine::new(index, settings)));
            let _ = b.root.set(root);
        }
        Ok(InitializeResult {
            server_info: Some(ServerInfo {
                name: "patois".into(),
                version: Some(env!("CARGO_PKG_VERSION").into()),
            }),
            capabilities: ServerCapabilities {
                position_encoding: Some(if utf8 {
                    PositionEncodingKind::UTF8
                } else {
                    PositionEncodingKind::UTF16
                }),
                text_document_sync: Some(TextDocumentSyncCapability::Options(
                    TextDocumentSyncOptions {
                        open_close: Some(true),
                        change: Some(TextDocumentSyncKind::INCREMENTAL),
                        save: Some(TextDocumentSyncSaveOptions::Supported(true)),
                        ..Default::default()
                    },
                )),
                inline_completion_provider: Some(OneOf::Left(true)),
                completion_provider: Some(CompletionOptions {
                    resolve_provider: Some(false),
                    ..Default::default()
                }),
                code_action_provider: Some(CodeActionProviderCapability::Options(
                    CodeActionOptions {
                        code_action_kinds: Some(vec![CodeActionKind::new("source.patois.explain")]),
                        resolve_provider: Some(true),
                        work_done_progress_options: Default::default(),
                    },
                )),
                execute_command_provider: Some(ExecuteCommandOptions {
                    commands: vec![EXPLAIN_COMMAND.into(), REINDEX_COMMAND.into()],
                    work_done_progress_options: Default::default(),
                }),
                ..Default::default()
            },
            offset_encoding: None,
        })
    }

    async fn initialized(&self, _: InitializedParams) {
        let b = self.0.clone();
        if let Some(root) = b.root.get().cloned() {
            if b.client_watches.load(Ordering::Relaxed) {
                let reg = Registration {
                    id: "patois-watch".into(),
                    method: "workspace/didChangeWatchedFiles".into(),
                    register_options: Some(json!({ "watchers": [{ "globPattern": "**/*" }] })),
                };
                let _ = b.client.register_capability(vec![reg]).await;
            } else {
                b.start_watcher(&root);
            }
            tokio::spawn(async move {
                b.reindex("patois: indexing").await;
                let e = b.engine().ok();
                if let Some(e) = e {
                    let _ = tokio::task::spawn_blocking(move || e.load_model()).await;
                }
                b.send_status().await;
            });
        }
    }

    async fn shutdown(&self) -> Result<()> {
        self.0.watcher.lock().unwrap().take();
        Ok(())
    }

    async fn did_open(&self, p: DidOpenTextDocumentParams) {
        let b = &self.0;
        let rel = b.rel_path(&p.text_document.uri);
        if let Ok(e) = b.engine() {
            e.document_changed(&rel, p.text_document.text.clone(), 1);
        }
        b.docs.insert(p.text_document.uri, Doc { text: p.text_document.text, rel });
    }

    async fn did_change(&self, p: DidChangeTextDocumentParams) {
        let b = &self.0;
        let enc = b.enc();
        let Some(mut doc) = b.docs.get_mut(&p.text_document.uri) else { return };
        let mut line = 1;
        let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            for c in &p.content_changes {
                apply(&mut doc.text, c, enc);
                line = c.range.map(|r| r.start.line + 1).unwrap_or(1);
            }
        }));
        if ok.is_err() {
            b.client
                .log_message(
                    MessageType::ERROR,
                    "patois: could not apply an edit; send the full text again",
                )
                .await;
            return;
        }
        if let Ok(e) = b.engine() {
            e.document_changed(&doc.rel, doc.text.clone(), line);
        }
    }

    async fn did_close(&self, p: DidCloseTextDocumentParams) {
        if let Some((_, d)) = self.0.docs.remove(&p.text_document.uri) {
            if let Ok(e) = self.0.engine() {
                e.document_closed(&d.rel);
            }
        }
    }

    async fn did_save(&self, _: DidSaveTextDocumentParams) {
        let b = self.0.clone();
        tokio::spawn(async move { b.reindex("patois: updating the index").await });
    }

    async fn did_change_watched_files(&self, _: DidChangeWatchedFilesParams) {
        let b = self.0.clone();
        tokio::spawn(async move { b.reindex("patois: updating the index").await });
    }

    async fn did_change_configuration(&self, p: DidChangeConfigurationParams) {
        let Ok(e) = self.0.engine() else { return };
        let s = merge_settings(&e.settings(), &p.settings);
        let e2 = e.clone();
        match blocking(move || e2.set_settings(s)).await {
            Ok(()) => {}
            Err(err) => {
                self.0
                    .client
                    .show_message(MessageType::WARNING, format!("patois: {}", err.message))
                    .await
            }
        }
        self.0.send_status().await;
    }

    async fn completion(&self, p: CompletionParams) -> Result<Option<CompletionResponse>> {
        let pos = p.text_document_position;
        let Some(text) = self.0.inline(&pos.text_document.uri, pos.position).await? else {
            return Ok(None);
        };
        let first = text.lines().next().unwrap_or("").trim().to_string();
        Ok(Some(CompletionResponse::Array(vec![CompletionItem {
            label: format!("patois: {first}"),
            kind: Some(CompletionItemKind::TEXT),
            insert_text: Some(text),
            detail: Some("patois completion".into()),
            ..Default::default()
        }])))
    }

    async fn code_action(&self, p: CodeActionParams) -> Result<Option<CodeActionResponse>> {
        let action = CodeAction {
            title: "Explain with patois".into(),
            kind: Some(CodeActionKind::new("source.patois.explain")),
            data: Some(json!({ "uri": p.text_document.uri, "range": p.range })),
            ..Default::default()
        };
        Ok(Some(vec![CodeActionOrCommand::CodeAction(action)]))
    }

    async fn code_action_resolve(&self, mut a: CodeAction) -> Result<CodeAction> {
        let data = a.data.clone().unwrap_or(Value::Null);
        a.command = Some(Command {
            title: "Explain with patois".into(),
            command: EXPLAIN_COMMAND.into(),
            arguments: Some(vec![data["uri"].clone(), data["range"].clone()]),
        });
        Ok(a)
    }

    async fn execute_command(&self, p: ExecuteCommandParams) -> Result<Option<LSPAny>> {
        let b = &self.0;
        match p.command.as_str() {
            EXPLAIN_COMMAND => {
                let uri: Uri =
                    serde_json::from_value(p.arguments.first().cloned().unwrap_or_default())
                        .map_err(|e| invalid(format!("argument 1 must be a document URI: {e}")))?;
                let range: Range =
                    serde_json::from_value(p.arguments.get(1).cloned().unwrap_or_default())
                        .map_err(|e| invalid(format!("argument 2 must be a range: {e}")))?;
                let v = b
                    .explain(ExplainParams {
                        text_document: TextDocumentIdentifier { uri },
                        range,
                        summary: Some(true),
                    })
                    .await?;
                // Generic clients: write the markdown under the index folder and show it.
                if let (Some(md), Ok(e)) = (v["markdown"].as_str(), b.engine()) {
                    let dir = e.index().dir().join("explain");
                    let name = format!("{}.md", v["symbol"].as_str().unwrap_or("selection"));
                    if std::fs::create_dir_all(&dir).is_ok()
                        && std::fs::write(dir.join(&name), md).is_ok()
                    {
                        if let Some(uri) = Uri::from_file_path(dir.join(&name)) {
                            let _ = b
                                .client
                                .show_document(ShowDocumentParams {
                                    uri,
                                    external: Some(false),
                                    take_focus: Some(true),
                                    selection: None,
                                })
                                .await;
                        }
                    }
                }
                Ok(Some(v))
            }
            REINDEX_COMMAND => {
                let b = b.clone();
                tokio::spawn(async move { b.reindex("patois: re-indexing").await });
                Ok(None)
            }
            other => Err(invalid(format!(
                "unknown command {other}; patois provides {EXPLAIN_COMMAND} and {REINDEX_COMMAND}"
            ))),
        }
    }
}

impl Backend {
    /// The completion text at a position, or `None` when there is nothing to offer.
    async fn inline(&self, uri: &Uri, pos: Position) -> Result<Option<String>> {
        let engine = self.engine()?;
        let (rel, text) = match self.docs.get(uri) {
            Some(d) => (d.rel.clone(), d.text.clone()),
            None => {
                return Err(invalid(format!(
                    "{} is not open; send textDocument/didOpen first",
                    uri.as_str()
                )))
            }
        };
        let cursor = offset(&text, pos, self.enc());
        let ticket = engine.begin(&rel);
        let guard = CancelOnDrop(ticket.clone());
        let e = engine.clone();
        let r = blocking(move || e.complete(&rel, &text, cursor, &ticket)).await;
        drop(guard);
        match r {
            Ok(c) if c.stop == patois_engine::StopReason::Cancelled => {
                Err(Error::request_cancelled())
            }
            Ok(c) if c.text.is_empty() => Ok(None),
            Ok(c) => Ok(Some(c.text)),
            Err(e)
                if e.message.contains("no model yet")
                    || e.message.contains("max_document_bytes")
                    || e.message.contains("disabled for") =>
            {
                self.client.log_message(MessageType::INFO, format!("patois: {}", e.message)).await;
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    pub async fn inline_completion(
        &self,
        p: InlineCompletionParams,
    ) -> Result<Option<InlineCompletionResponse>> {
        let pos = p.text_document_position;
        let items = match self.inline(&pos.text_document.uri, pos.position).await? {
            Some(text) => vec![InlineCompletionItem {
                insert_text: text,
                filter_text: None,
                range: Some(Range::new(pos.position, pos.position)),
                command: None,
                insert_text_format: None,
            }],
            None => vec![],
        };
        Ok(Some(InlineCompletionResponse::List(InlineCompletionList { items })))
    }

    pub async fn explain(&self, p: ExplainParams) -> Result<Value> {
        let engine = self.engine()?;
        let (rel, text) = match self.docs.get(&p.text_document.uri) {
            Some(d) => (d.rel.clone(), d.text.clone()),
            None => {
                let path = p
                    .text_document
                    .uri
                    .to_file_path()
                    .ok_or_else(|| invalid("not a file URI"))?
                    .into_owned();
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| invalid(format!("{}: {e}", path.display())))?;
                (self.rel_path(&p.text_document.uri), text)
            }
        };
        let (start, end) = (p.range.start.line + 1, p.range.end.line.max(p.range.start.line) + 1);
        let summary = p.summary.unwrap_or(true);
        let x = blocking(move || patois_engine::explain(&engine, &rel, &text, start, end, summary))
            .await?;
        serde_json::to_value(&x).map_err(internal)
    }

    /// `patois/context`: the items the model would read at a position, with citations.
    pub async fn context(&self, p: TextDocumentPositionParams) -> Result<Value> {
        let engine = self.engine()?;
        let (rel, text) = match self.docs.get(&p.text_document.uri) {
            Some(d) => (d.rel.clone(), d.text.clone()),
            None => return Err(invalid(format!("{} is not open", p.text_document.uri.as_str()))),
        };
        let cursor = offset(&text, p.position, self.enc());
        let budget = engine.settings().budget;
        let r = blocking(move || engine.context(&rel, &text, cursor, budget)).await?;
        Ok(json!({ "items": r.items }))
    }

    pub async fn status(&self, _: StatusParams) -> Result<Value> {
        let e = self.engine()?;
        let mut v = serde_json::to_value(e.status()).map_err(internal)?;
        v["indexing"] = json!(self.indexing.load(Ordering::SeqCst));
        Ok(v)
    }
}

/// Reads LSP frames from `input` and passes them on. A frame whose body is not
/// JSON would end tower-lsp's reader (tokio-util stops a stream after a decode
/// error), so it is replaced by a request to `patois/malformed`, answered with a
/// parse error; the server keeps serving.
async fn sanitize<R, W>(input: R, mut out: W)
where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    let mut input = BufReader::new(input);
    let mut n = 0u64;
    loop {
        let mut headers = String::new();
        let mut len: Option<usize> = None;
        loop {
            let mut line = String::new();
            match input.read_line(&mut line).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            headers.push_str(&line);
            let t = line.trim();
            if t.is_empty() {
                break;
            }
            if let Some(v) = t.strip_prefix("Content-Length:") {
                len = v.trim().parse().ok();
            }
        }
        let Some(len) = len else { continue };
        let mut body = vec![0u8; len];
        if input.read_exact(&mut body).await.is_err() {
            return;
        }
        let frame = if serde_json::from_slice::<Value>(&body).is_ok() {
            let mut f = headers.into_bytes();
            f.extend(body);
            f
        } else {
            n += 1;
            let why = format!("not JSON: {}", String::from_utf8_lossy(&body[..body.len().min(80)]));
            let req = serde_json::to_vec(&json!({ "jsonrpc": "2.0", "id": format!("malformed-{n}"), "method": "patois/malformed", "params": { "error": why } })).unwrap();
            let mut f = format!("Content-Length: {}\r\n\r\n", req.len()).into_bytes();
            f.extend(req);
            f
        };
        if out.write_all(&frame).await.is_err() || out.flush().await.is_err() {
            return;
        }
    }
}

#[derive(Debug, Deserialize)]
struct MalformedParams {
    error: String,
}

impl Server_ {
    async fn malformed(&self, p: MalformedParams) -> Result<Value> {
        Err(Error { code: ErrorCode::ParseError, message: p.error.into(), data: None })
    }
}

/// Serves LSP on stdin/stdout until the client exits.
pub async fn serve_stdio() {
    let (proxy_in, proxy_out) = tokio::io::duplex(1 << 16);
    tokio::spawn(sanitize(tokio::io::stdin(), proxy_in));
    let (service, socket) = LspService::build(|client| Server_(Arc::new(Backend::new(client))))
        .custom_method("patois/malformed", Server_::malformed)
        .custom_method("textDocument/inlineCompletion", Server_::inline_completion)
        .custom_method("patois/explain", Server_::explain)
        .custom_method("patois/status", Server_::status)
        .custom_method("patois/context", Server_::context)
        .finish();
    Server::new(proxy_out, tokio::io::stdout(), socket).serve(service).await;
}

#[cfg(test)]
mod tests {
    use super::merge_settings;
    use patois_engine::BackendKind;
    use patois_engine::Settings;
    use serde_json::json;

    #[test]
    fn editor_settings_choose_the_model_and_backend() {
        let base = Settings::default();
        let s = merge_settings(
            &base,
            &json!({ "patois": { "model": "/m.gguf", "backend": "candle" } }),
        );
        assert_eq!(s.model.as_deref(), Some(std::path::Path::new("/m.gguf")));
        assert_eq!(s.backend, BackendKind::Candle);
        let s = merge_settings(&s, &json!({ "model": "", "backend": "warp-drive" }));
        assert_eq!(s.model, None, "an empty model means the default");
        assert_eq!(s.backend, BackendKind::Candle, "an unknown backend changes nothing");
    }
}
