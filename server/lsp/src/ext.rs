//! patois's LSP extensions: the custom requests and notifications, with their own wire
//! types (camelCase, like LSP itself). Editors read these and nothing else; the engine's
//! structs can change without breaking them. Documented for editor authors in
//! `docs/lsp-extensions.md`.

pub use patois_engine::{ModelFormat, RunBy, SectionTitle, SymbolKind};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use tower_lsp_server::ls_types::notification::Notification;
use tower_lsp_server::ls_types::request::Request;
use tower_lsp_server::ls_types::{
    ProgressToken, Range, TextDocumentIdentifier, TextDocumentPositionParams,
};

/// The command that runs "Explain with patois" (arguments: document URI, range).
pub const EXPLAIN_COMMAND: &str = "patois.explain";
/// The command that updates the index now.
pub const REINDEX_COMMAND: &str = "patois.reindex";
/// The command of every inline completion item, run by the client when the user accepts
/// it (arguments: document URI, the item's position, its insert text): patois computes
/// the completion that follows it in the background, so that it is ready when asked for.
pub const ACCEPTED_COMMAND: &str = "patois.accepted";

/// `patois/cursor`: the cursor rests at a position (sent by clients, debounced). patois
/// prefills the prompt a completion there would have up to the cursor's line, in the
/// background, paused by every request that needs the model, so that the first ghost
/// text there comes sooner.
pub enum Cursor {}
impl Notification for Cursor {
    type Params = TextDocumentPositionParams;
    const METHOD: &'static str = "patois/cursor";
}

/// `patois/ask`: a question about the code and its history, answered by the model from
/// the sources the index holds, each claim cited; "not found" when it holds nothing on it.
pub enum Ask {}
impl Request for Ask {
    type Params = AskParams;
    type Result = AskResult;
    const METHOD: &'static str = "patois/ask";
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AskParams {
    pub question: String,
    /// Only code and commits under this path (relative to the workspace root).
    #[serde(default)]
    pub path: Option<String>,
    /// Only commits from this date on (`YYYY-MM-DD`, UTC).
    #[serde(default)]
    pub since: Option<String>,
    /// When given, `$/progress` notifications with this token carry the answer so far
    /// (`{ text }`) while the model writes it.
    #[serde(default)]
    pub partial_result_token: Option<ProgressToken>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AskResult {
    /// The answer; `[n]` cites `sources[n - 1]`. Absent when `note` says why.
    pub answer: Option<String>,
    /// The numbers the answer cites, each once, in order.
    pub cited: Vec<usize>,
    /// What the model was given, numbered from 1 in this order.
    pub sources: Vec<AskSource>,
    /// The model that wrote the answer.
    pub model: Option<String>,
    /// Why there is no answer: "Not found: …", no model, no whole sentence.
    pub note: Option<String>,
    /// The answer and its sources as Markdown; `[n]` and the sources are links.
    pub markdown: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AskSource {
    pub citation: Citation,
    pub label: String,
}

/// `$/progress` for a `partialResultToken` of `patois/ask` or `patois/explain`: the
/// model's text so far (the answer, the summary).
pub enum TextProgress {}
impl Notification for TextProgress {
    type Params = TextPartial;
    const METHOD: &'static str = "$/progress";
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct TextPartial {
    pub token: ProgressToken,
    pub value: PartialText,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct PartialText {
    pub text: String,
}

/// `patois/nextEdit`: the edits that follow the user's latest edit of a document, found
/// without the model (now: after a rename, the old name's other uses), each with why.
pub enum NextEdits {}
impl Request for NextEdits {
    type Params = NextEditParams;
    type Result = NextEditResult;
    const METHOD: &'static str = "patois/nextEdit";
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NextEditParams {
    pub text_document: TextDocumentIdentifier,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NextEditResult {
    /// The document's first, then other files'.
    pub edits: Vec<NextEditItem>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NextEditItem {
    pub uri: String,
    pub range: Range,
    pub new_text: String,
    /// The edit it follows ("`put` was renamed to `store` at src/app.rs:4").
    pub reason: String,
    pub citation: Citation,
}

/// `patois/explain`: what a colleague would show about a range, with citations.
pub enum Explain {}
impl Request for Explain {
    type Params = ExplainParams;
    type Result = ExplainResult;
    const METHOD: &'static str = "patois/explain";
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExplainParams {
    pub text_document: TextDocumentIdentifier,
    pub range: Range,
    /// Ask the model for a summary too (default true).
    #[serde(default)]
    pub summary: Option<bool>,
    /// When given, `$/progress` notifications with this token carry the summary so far
    /// (`{ text }`) while the model writes it.
    #[serde(default)]
    pub partial_result_token: Option<ProgressToken>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExplainResult {
    /// The symbol explained, when the range is in or on a definition.
    pub symbol: Option<String>,
    /// Its kind (`function`, `struct`, ...).
    pub kind: Option<SymbolKind>,
    pub sections: Vec<ExplainSection>,
    /// Written by the model from the sections' entries, numbered in order as its sources:
    /// `[n]` cites the n-th entry over all sections. Absent without a model, or when the
    /// model wrote no whole sentence.
    pub summary: Option<String>,
    /// The model that wrote the summary.
    pub summary_model: Option<String>,
    /// The whole explanation as Markdown; citations are links `path#Lline`.
    pub markdown: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExplainSection {
    pub title: SectionTitle,
    pub entries: Vec<ExplainEntry>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExplainEntry {
    pub citation: Citation,
    pub label: String,
    /// A few lines of code, or the commit message.
    pub excerpt: String,
}

/// Where a piece of context comes from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Citation {
    /// Relative to the workspace root, `/`-separated.
    pub path: String,
    /// 1-based, inclusive.
    pub start_line: u32,
    pub end_line: u32,
    /// The commit, for history items.
    pub commit: Option<String>,
    /// The pull request number, when the commit message names one.
    pub pr: Option<u64>,
}

/// `patois/context`: the items the model would read at a position, best first.
pub enum Context {}
impl Request for Context {
    type Params = TextDocumentPositionParams;
    type Result = ContextResult;
    const METHOD: &'static str = "patois/context";
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContextResult {
    pub items: Vec<ContextItem>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContextItem {
    pub source: patois_engine::Source,
    pub citation: Citation,
    /// A symbol name, commit summary or file name.
    pub title: String,
    pub text: String,
    /// Why the source picked it (`imported from crate::store`, ...).
    pub reason: String,
    /// The fused rank score (higher is better).
    pub score: f32,
}

/// `patois/status` (request, and a notification when the index or model changes).
pub enum Status {}
impl Request for Status {
    type Params = StatusParams;
    type Result = StatusReport;
    const METHOD: &'static str = "patois/status";
}

/// The same report, pushed by the server.
pub enum StatusNotification {}
impl Notification for StatusNotification {
    type Params = StatusReport;
    const METHOD: &'static str = "patois/status";
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusParams {}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusReport {
    pub root: PathBuf,
    pub index_dir: PathBuf,
    pub files: usize,
    pub commits: u64,
    pub head: Option<String>,
    /// True while the index is being updated (requests use the index as it was).
    pub indexing: bool,
    /// The loaded model; absent until it is loaded or when it failed (see `modelError`).
    pub model: Option<ModelReport>,
    /// The model in effect, also before it is loaded.
    pub model_path: PathBuf,
    /// Why this model: the settings, the installed default, or the built-in model.
    pub model_source: String,
    pub model_error: Option<String>,
    /// Where prompts are sent.
    pub prompts_go_to: String,
    /// What happened with the inference server (unreachable, refused), if anything.
    pub remote_note: Option<String>,
    pub adapter: Option<PathBuf>,
    /// How strongly the adapter is applied (1: as trained).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adapter_strength: Option<f32>,
    /// Why an adapter that exists is not applied.
    pub adapter_note: Option<String>,
    pub drift: Option<DriftReport>,
    /// The model's speed measured on this machine (at load, then from every completion).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed: Option<SpeedReport>,
    /// The latency budget in effect (milliseconds from a request to its first line; 0: none).
    #[serde(default)]
    pub latency_budget_ms: u64,
    /// The prompt size (tokens) the last completion was allowed by the budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_window: Option<usize>,
    /// The largest prompt completions have here: the settings' window, under the latency
    /// budget at most what this machine prefills while the user pauses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_prompt_window: Option<usize>,
    /// The model's runs since the server started: answers, warm-ups and completions
    /// computed ahead, with how much of their prompts the model's cache held.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_runs: Option<patois_engine::ModelRuns>,
    /// Idle training (`train_when_idle`): the last or current run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training: Option<TrainingReport>,
}

/// The model's measured speed, in tokens per second.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SpeedReport {
    /// Prompt tokens evaluated per second.
    pub prefill: f64,
    /// Tokens generated per second.
    pub decode: f64,
}

/// Where an idle training run is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TrainingState {
    #[default]
    Running,
    /// At a keystroke or request, until the editor is idle again.
    Paused,
    Finished,
    Failed,
}

impl TrainingState {
    pub fn as_str(self) -> &'static str {
        match self {
            TrainingState::Running => "running",
            TrainingState::Paused => "paused",
            TrainingState::Finished => "finished",
            TrainingState::Failed => "failed",
        }
    }
}

/// An idle training run as `patois/status` shows it.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TrainingReport {
    pub state: TrainingState,
    /// The training process while it exists.
    pub pid: Option<u32>,
    pub steps: usize,
    pub tokens: usize,
    /// The last step's training loss.
    pub loss: Option<f32>,
    pub tokens_per_s: f64,
    /// Held-out loss of the base model, of the new adapter, of the adapter it competed with.
    pub base_loss: Option<f32>,
    pub held_out_loss: Option<f32>,
    pub previous_loss: Option<f32>,
    /// Whether the new adapter replaced the one in place (it had the lower held-out loss).
    pub replaced: Option<bool>,
    /// Why a run failed.
    pub message: Option<String>,
}

impl TrainingReport {
    pub(crate) fn started(pid: u32) -> TrainingReport {
        TrainingReport { state: TrainingState::Running, pid: Some(pid), ..Default::default() }
    }

    pub(crate) fn failed(why: String) -> TrainingReport {
        TrainingReport { state: TrainingState::Failed, message: Some(why), ..Default::default() }
    }

    /// Takes in one line of `patois train --idle`.
    pub(crate) fn update(&mut self, event: patois_adapter::IdleEvent) {
        match event {
            patois_adapter::IdleEvent::Step { step, loss, tokens_per_s } => {
                self.steps = step;
                self.loss = Some(loss);
                self.tokens_per_s = tokens_per_s;
            }
            patois_adapter::IdleEvent::Finished(done) => {
                self.state = TrainingState::Finished;
                self.steps = done.steps;
                self.tokens = done.tokens;
                self.base_loss = Some(done.base_loss);
                self.held_out_loss = Some(done.held_out_loss);
                self.previous_loss = done.previous_loss;
                self.replaced = Some(done.replaced);
            }
        }
    }

    /// One line for `$/progress` and logs.
    pub(crate) fn message(&self) -> String {
        let mut m = format!("idle training {}: step {}", self.state.as_str(), self.steps);
        if let Some(l) = self.loss {
            m += &format!(", loss {l:.3}, {:.0} tokens/s", self.tokens_per_s);
        }
        if let (Some(b), Some(h)) = (self.base_loss, self.held_out_loss) {
            m += &format!("; held-out loss {b:.3} (base) -> {h:.3}");
        }
        if let Some(p) = self.previous_loss {
            m += &format!(", adapter in place {p:.3}");
        }
        match self.replaced {
            Some(true) => m += "; adapter replaced",
            Some(false) => m += "; adapter kept (the new one was not better)",
            None => {}
        }
        if let Some(why) = &self.message {
            m += &format!(": {why}");
        }
        m
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelReport {
    pub path: PathBuf,
    pub format: ModelFormat,
    pub arch: String,
    pub parameters: usize,
    /// Tokens one request may hold.
    pub context: usize,
    /// What runs it: `llama.cpp`, `candle` or `openai` (an inference server).
    pub backend: RunBy,
}

/// How far the repository moved since the adapter (or built-in model) was trained.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DriftReport {
    pub trained_at: Option<String>,
    /// Commits since training; absent when history was rewritten since.
    pub commits_since: Option<usize>,
    pub history_rewritten: bool,
    /// Share of the training files changed or gone (0..1).
    pub changed_share: f64,
    pub retrain_advised: bool,
    pub advice: String,
}

/// `patois/documentText`: the text the server holds for an open document, to check
/// that client and server agree after edits (like rust-analyzer's `viewFileText`).
pub enum DocumentText {}
impl Request for DocumentText {
    type Params = TextDocumentIdentifier;
    type Result = String;
    const METHOD: &'static str = "patois/documentText";
}

/// Sent by the frame reader in place of a message that is not valid JSON-RPC, with the
/// client's id when it could be read: the server answers it with the error.
pub(crate) const MALFORMED_REQUEST: &str = "patois/malformedRequest";
/// The same without an id: the server logs it.
pub(crate) const MALFORMED_NOTIFICATION: &str = "patois/malformedNotification";

#[derive(Debug, Deserialize, Serialize)]
pub(crate) struct MalformedParams {
    /// JSON-RPC error code: parse error or invalid request.
    pub code: i64,
    pub error: String,
}

#[cfg(test)]
mod tests {
    /// Every field of the wire types, by its name on the wire, is in the extensions'
    /// documentation.
    #[test]
    fn docs_lsp_extensions_names_every_field() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let doc = std::fs::read_to_string(root.join("docs/lsp-extensions.md")).unwrap();
        let words: std::collections::HashSet<&str> =
            doc.split(|c: char| !c.is_alphanumeric()).collect();
        let missing: Vec<String> = include_str!("ext.rs")
            .lines()
            .filter_map(|l| l.trim_start().strip_prefix("pub ")?.split_once(": ").map(|f| f.0))
            .filter(|f| f.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
            .map(|f| {
                let mut parts = f.split('_');
                let first = parts.next().unwrap_or("").to_string();
                parts.fold(first, |mut out, p| {
                    let mut cs = p.chars();
                    out.extend(cs.next().map(|c| c.to_ascii_uppercase()));
                    out.push_str(cs.as_str());
                    out
                })
            })
            .filter(|f| !words.contains(f.as_str()))
            .collect();
        assert!(missing.is_empty(), "docs/lsp-extensions.md does not name {missing:?}");
    }
}
