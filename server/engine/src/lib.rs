//! The engine: the one API the CLI and the LSP layer call. It owns the index, the
//! model, the open documents, and per-document cancellation; it runs
//! retrieval → prompt → generation and says how long each part took.

mod edits;
mod error;
mod explain;
pub use error::{Error, Result};
pub use explain::{explain, Entry, Explanation, Section};
pub use patois_adapter::{CommitsSince, Drift};
pub use patois_generate::{BackendKind, Mode, StopReason};
pub use patois_retrieve::{Citation, Item, Source};

use patois_generate::openai::{RemoteBackend, RemoteOptions};
use patois_generate::Error as GenError;
use patois_generate::{
    decide_mode, load_backend, load_backend_with_lora, Backend, GenOptions, Generator,
};
use patois_index::{Index, Progress, Report, UpdateOptions};
use patois_prompt::{build, Input, Limits};
use patois_retrieve::{chars, retrieve, Budget, Options, RecentDoc, Request};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Instant;

/// Settings from the command line, `patois.toml` or the editor.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// A `.gguf` file or model folder; `None`: the installed default model
    /// (`patois model install`), else the built-in model under the index folder.
    pub model: Option<PathBuf>,
    /// What runs the model: `auto` (llama.cpp for GGUF, candle otherwise), `llama`, `candle`.
    pub backend: BackendKind,
    /// Context budget in tokens of the model's tokenizer (characters without a model).
    pub budget: usize,
    /// Most tokens a completion may have.
    pub max_tokens: usize,
    /// Most tokens a whole prompt may have (also capped by the model's context).
    pub prompt_tokens: usize,
    /// Languages (registry names) patois stays silent in.
    pub disabled_languages: Vec<String>,
    /// Documents larger than this many bytes are refused.
    pub max_document_bytes: usize,
    /// Reuse the model's KV cache and earlier completions (off only to measure without them).
    pub cache: bool,
    /// A PEFT LoRA adapter applied (merged) at load; `None`: `adapters/house` under
    /// the index folder when it exists.
    pub adapter: Option<PathBuf>,
    /// How strongly the adapter is applied, 0 to 4: 1 as trained, 0.5 halves every update;
    /// `None`: the strength in the adapter's `patois.json`, else 1.
    pub adapter_strength: Option<f32>,
    /// With `backend = "openai"`: the server's API base, e.g. `http://gpu-box:8000/v1`.
    pub endpoint: Option<String>,
    /// The model name sent to the server.
    pub model_name: Option<String>,
    /// Sent instead of `model_name` when set: the house adapter as the server serves it
    /// (a vLLM `--lora-modules` or llama-server LoRA name).
    pub adapter_name: Option<String>,
    /// The environment variable holding the server's API key (never the key itself).
    pub api_key_env: Option<String>,
    /// Complete with the local model while the server is unreachable.
    pub fallback_to_local: bool,
    /// `patois serve` trains the house adapter while the editor is idle (opt-in): at
    /// low priority on one thread, paused at the next keystroke or request.
    pub train_when_idle: bool,
    /// Seconds without keystrokes or requests before idle training starts or resumes.
    pub idle_seconds: u64,
    /// Minutes of training per idle run; the adapter is replaced when a run ends with a
    /// lower held-out loss than the adapter in place.
    pub idle_training_minutes: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            model: None,
            backend: BackendKind::Auto,
            budget: 384,
            max_tokens: 48,
            prompt_tokens: 1024,
            disabled_languages: Vec::new(),
            max_document_bytes: 2 << 20,
            adapter: None,
            adapter_strength: None,
            cache: true,
            endpoint: None,
            model_name: None,
            adapter_name: None,
            api_key_env: None,
            fallback_to_local: true,
            train_when_idle: false,
            idle_seconds: 120,
            idle_training_minutes: 10.0,
        }
    }
}

impl Settings {
    /// The tokens a prompt may have for a model with a `context`-token window: the
    /// configured prompt size or the window, less room for the completion.
    pub fn prompt_window(&self, context: usize) -> usize {
        context.min(self.prompt_tokens).saturating_sub(self.max_tokens)
    }

    /// Reads `patois.toml` at the repository root, if there is one.
    pub fn from_repo(root: &Path) -> Result<Settings> {
        let p = root.join("patois.toml");
        if !p.exists() {
            return Ok(Settings::default());
        }
        let settings_error = |message: String| Error::Settings { path: p.clone(), message };
        let text = std::fs::read_to_string(&p).map_err(|e| settings_error(e.to_string()))?;
        toml::from_str(&text).map_err(|e| settings_error(e.to_string()))
    }
}

/// The model in effect and why it was chosen.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelChoice {
    pub path: PathBuf,
    pub source: String,
}

/// Locks that outlive a panic elsewhere: every critical section here is one lookup or
/// assignment, so the data stays whole and later requests go on.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(PoisonError::into_inner)
}
fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(PoisonError::into_inner)
}

/// A model file as it was when loading it was tried.
type ModelStamp = (PathBuf, Option<std::time::SystemTime>);

/// Where the built-in model lives for an index folder.
pub fn builtin_model_dir(index_dir: &Path) -> PathBuf {
    index_dir.join("model")
}

/// The file name of an adapter's GGUF export inside its folder.
pub const GGUF_ADAPTER: &str = "adapter.gguf";

/// Where `patois train --base` puts the adapter named `name`.
pub fn adapter_dir(index_dir: &Path, name: &str) -> PathBuf {
    index_dir.join("adapters").join(name)
}

/// A completion with everything needed to show and explain it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CompletionResult {
    pub text: String,
    pub stop: StopReason,
    pub mode: Mode,
    pub tokens: usize,
    pub prompt_tokens: usize,
    pub cache_hit_tokens: usize,
    /// Served from the completion cache without running the model.
    pub cached: bool,
    pub ms: Timings,
    pub citations: Vec<Citation>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Timings {
    pub retrieval: f64,
    pub prompt: f64,
    pub prefill: f64,
    pub decode: f64,
    pub total: f64,
}

/// What the status request reports.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    pub root: PathBuf,
    pub index_dir: PathBuf,
    pub files: usize,
    pub commits: u64,
    pub head: Option<String>,
    pub model: Option<patois_generate::ModelInfo>,
    /// The model in effect, loaded or not (see [`Engine::model_choice`]).
    pub model_path: PathBuf,
    /// Why this model: from the settings, the installed default, or the built-in model.
    pub model_source: String,
    pub model_error: Option<String>,
    /// Where prompts go: `local` (this process) unless an endpoint is configured.
    pub prompts_go_to: String,
    /// What happened with the inference server (unreachable, refused), if anything.
    pub remote_note: Option<String>,
    /// The adapter applied to the model, if any.
    pub adapter: Option<PathBuf>,
    /// How strongly it is applied (1: as trained).
    pub adapter_strength: Option<f32>,
    /// Why an adapter that exists is not applied.
    pub adapter_note: Option<String>,
    /// Drift of what was trained on the repository (the adapter, else the built-in model).
    pub drift: Option<patois_adapter::Drift>,
}

/// The completion up to a line opening a markdown code fence: a chat-tuned model sometimes
/// starts writing prose about the code, and a fence is never code.
fn before_fence(text: &str) -> &str {
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        if line.trim_start().starts_with("```") {
            return text[..at].trim_end_matches(['\n', '\r']);
        }
        at += line.len();
    }
    text
}

/// The completion with its first line's leading whitespace removed, and as much from the
/// lines after it: the cursor follows the indentation the editor (or the user) already put
/// on the line, and a model that indents again would insert it twice.
fn drop_extra_indent(text: &str) -> String {
    let extra = text.len() - text.trim_start_matches([' ', '\t']).len();
    if extra == 0 {
        return text.to_string();
    }
    let mut lines = text.split('\n');
    let mut out = lines.next().unwrap_or("")[extra..].to_string();
    for l in lines {
        let ws = l.len() - l.trim_start_matches([' ', '\t']).len();
        out.push('\n');
        out.push_str(&l[ws.min(extra)..]);
    }
    out
}

/// Puts the items that were also in the previous prompt first, in their previous order:
/// the prompt then starts as before and the model's cache of that start is reused.
fn keep_order_of(items: &mut [Item], before: &[Item]) {
    let rank = |it: &Item| before.iter().position(|b| b.citation == it.citation);
    items.sort_by_key(|it| rank(it).unwrap_or(usize::MAX));
}

/// What remains of `completion` (made at `was_prefix`|`was_suffix`) once the document reads
/// `prefix`|`suffix`: the user typed its beginning. `None` when they typed something else,
/// nothing, or all of it.
fn rest_after_typing<'a>(
    was_prefix: &str,
    was_suffix: &str,
    completion: &'a str,
    prefix: &str,
    suffix: &str,
) -> Option<&'a str> {
    if was_suffix != suffix {
        return None;
    }
    let typed = prefix.strip_prefix(was_prefix).filter(|t| !t.is_empty())?;
    completion.strip_prefix(typed).filter(|rest| !rest.trim().is_empty())
}

/// A completion as the model made it, and where.
struct Shown {
    path: String,
    prefix: String,
    suffix: String,
    result: CompletionResult,
}

struct DocState {
    text: Arc<String>,
    edit_line: u32,
    seq: u64,
}

/// Completions already computed, keyed by document and the text before the cursor.
#[derive(Default)]
struct CompletionCache {
    entries: Vec<((String, u64), CompletionResult)>,
}

const CACHE_ENTRIES: usize = 64;

fn hash(s: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    s.hash(&mut h);
    h.finish()
}

pub struct Engine {
    index: Index,
    settings: RwLock<Settings>,
    generator: RwLock<Option<Arc<dyn Backend>>>,
    /// Where installed models are looked up (`patois model install` puts them there).
    models_home: PathBuf,
    adapter_note: RwLock<Option<String>>,
    model_error: RwLock<Option<String>>,
    /// The local model that completes while the inference server is unreachable.
    fallback: RwLock<Option<Arc<dyn Backend>>>,
    /// Until when the server counts as unreachable: it is not asked meanwhile (`remote_note`
    /// says why).
    remote_down: Mutex<Option<Instant>>,
    remote_note: RwLock<Option<String>>,
    /// The model file that failed to load (with its modification time) and why: not
    /// retried on every request, only once the file or the settings change.
    failed_load: Mutex<Option<(ModelStamp, Error)>>,
    docs: Mutex<HashMap<String, DocState>>,
    /// The user's recent edits, a context source.
    edits: Mutex<edits::EditLog>,
    seq: AtomicU64,
    /// Retrieval of the last request: reused while the cursor stays on the same line,
    /// so the prompt's beginning (and its KV cache) stays the same while typing.
    last_items: Mutex<Option<(String, u32, Vec<Item>)>>,
    completions: Mutex<CompletionCache>,
    /// The last completion the model made, for typing into it.
    last_shown: Mutex<Option<Shown>>,
    /// The newest request number per document; older requests see it and stop.
    latest: Mutex<HashMap<String, Arc<AtomicU64>>>,
}

impl Engine {
    /// Opens the engine on an index. The model is loaded lazily by [`Engine::load_model`].
    pub fn new(index: Index, settings: Settings) -> Engine {
        Engine {
            index,
            settings: RwLock::new(settings),
            generator: RwLock::new(None),
            models_home: patois_models::models_home(),
            adapter_note: RwLock::new(None),
            model_error: RwLock::new(None),
            failed_load: Mutex::new(None),
            fallback: RwLock::new(None),
            remote_down: Mutex::new(None),
            remote_note: RwLock::new(None),
            docs: Mutex::new(HashMap::new()),
            edits: Mutex::new(edits::EditLog::default()),
            seq: AtomicU64::new(0),
            last_items: Mutex::new(None),
            completions: Mutex::new(CompletionCache::default()),
            last_shown: Mutex::new(None),
            latest: Mutex::new(HashMap::new()),
        }
    }

    /// Looks installed models up under `home` instead of the user's cache.
    pub fn with_models_home(mut self, home: PathBuf) -> Engine {
        self.models_home = home;
        self
    }

    pub fn index(&self) -> &Index {
        &self.index
    }
    pub fn root(&self) -> &Path {
        self.index.root()
    }
    pub fn settings(&self) -> Settings {
        read(&self.settings).clone()
    }

    /// Replaces the settings; a changed model path or adapter reloads the model.
    pub fn set_settings(&self, s: Settings) -> Result<()> {
        let old = self.settings();
        let reload = s.model != old.model
            || s.adapter != old.adapter
            || s.adapter_strength != old.adapter_strength
            || s.backend != old.backend
            || s.endpoint != old.endpoint
            || s.model_name != old.model_name
            || s.adapter_name != old.adapter_name
            || s.api_key_env != old.api_key_env;
        *write(&self.settings) = s;
        self.clear_completion_cache();
        *lock(&self.last_items) = None;
        if reload {
            self.reload_model();
            *write(&self.fallback) = None;
            *lock(&self.remote_down) = None;
            *write(&self.remote_note) = None;
            self.load_model()?;
        }
        Ok(())
    }

    /// Loads the model again at the next request (the adapter in place was replaced).
    pub fn reload_model(&self) {
        *write(&self.generator) = None;
        *lock(&self.failed_load) = None;
        self.clear_completion_cache();
    }

    /// The model in effect and why: the configured one, else the installed default
    /// model, else the built-in model (which may not exist yet).
    pub fn model_choice(&self) -> ModelChoice {
        let catalogue = patois_models::Catalogue::builtin();
        if let Some(p) = self.settings().model {
            let settings = "settings (--model, patois.toml or the editor)";
            // A catalogue name (`qwen2.5-coder-1.5b`) stands for its installed file.
            let named = p.to_str().filter(|_| !p.exists()).and_then(|n| catalogue.get(n).ok());
            return match named {
                Some(entry) => match entry.installed_in(&self.models_home) {
                    Some(path) => ModelChoice {
                        path,
                        source: format!(
                            "the catalogue model {} named in the {settings}",
                            entry.name
                        ),
                    },
                    None => ModelChoice {
                        path: entry.path_in(&self.models_home),
                        source: format!(
                            "the catalogue model {0} named in the {settings}, not installed: \
                             run `patois model install {0}`",
                            entry.name
                        ),
                    },
                },
                None => ModelChoice { path: p, source: settings.into() },
            };
        }
        let default = catalogue.default_entry();
        if let Some(p) = default.installed_in(&self.models_home) {
            return ModelChoice {
                path: p,
                source: format!("the installed default model {}", default.name),
            };
        }
        let builtin = builtin_model_dir(self.index.dir());
        ModelChoice {
            path: builtin,
            source: "the built-in model trained on this repository".into(),
        }
    }

    /// The model path in effect (see [`Engine::model_choice`]).
    pub fn model_path(&self) -> PathBuf {
        self.model_choice().path
    }

    /// The adapter in effect: the configured one, else `adapters/house` when present.
    pub fn adapter_path(&self) -> Option<PathBuf> {
        self.settings().adapter.or_else(|| {
            Some(adapter_dir(self.index.dir(), "house"))
                .filter(|d| d.join("adapter_config.json").exists())
        })
    }

    /// How strongly the adapter in effect is applied: the setting, else what its
    /// `patois.json` says, else 1.
    pub fn adapter_strength(&self) -> Result<f32> {
        self.strength_of(self.adapter_path().as_deref())
    }

    /// [`Engine::adapter_strength`] for the adapter in effect at `adapter`.
    fn strength_of(&self, adapter: Option<&Path>) -> Result<f32> {
        let configured = self.settings().adapter_strength;
        let recorded = || patois_adapter::Provenance::load(adapter?).ok()?.strength;
        match configured.or_else(recorded).unwrap_or(1.0) {
            s if (0.0..=4.0).contains(&s) => Ok(s),
            s => Err(Error::Settings {
                path: self.root().join("patois.toml"),
                message: format!(
                    "adapter_strength is {s}; it must be between 0 and 4 (1: as trained)"
                ),
            }),
        }
    }

    /// Drift of the adapter in effect, else of the built-in model.
    pub fn drift(&self) -> Option<patois_adapter::Drift> {
        let dir = self.adapter_path().or_else(|| Some(self.model_path()))?;
        let p = patois_adapter::Provenance::load(&dir).ok()?;
        patois_adapter::drift(&self.index, &p).ok()
    }

    /// Loads the model (once). Errors are kept for the status report.
    pub fn load_model(&self) -> Result<Arc<dyn Backend>> {
        if let Some(g) = read(&self.generator).as_ref() {
            return Ok(g.clone());
        }
        let choice = self.model_choice();
        let path = choice.path;
        let stamp = (path.clone(), std::fs::metadata(&path).and_then(|m| m.modified()).ok());
        if let Some((failed, e)) = lock(&self.failed_load).as_ref() {
            if *failed == stamp {
                return Err(e.clone());
            }
        }
        let settings = self.settings();
        if settings.backend == BackendKind::Openai {
            let remote = self.remote_backend(&settings, &path);
            return self.keep_loaded(remote, stamp);
        }
        let adapter = self.adapter_path();
        let strength = match self.strength_of(adapter.as_deref()) {
            Ok(strength) => strength,
            Err(e) => return self.keep_loaded(Err(e), stamp),
        };
        // llama.cpp applies an adapter's GGUF export; a configured adapter without one is
        // merged into candle's weights instead.
        let gguf_export = adapter.as_ref().is_some_and(|d| d.join(GGUF_ADAPTER).exists());
        let kind = match settings.backend {
            BackendKind::Auto if settings.adapter.is_some() && !gguf_export => BackendKind::Candle,
            kind => kind,
        };
        let loaded: anyhow::Result<Arc<dyn Backend>> =
            if !patois_generate::runs_on_llama(&path, kind) {
                Generator::load(&path, &patois_generate::device()).and_then(|mut g| {
                    if let Some(dir) = &adapter {
                        if let Err(e) = patois_adapter::apply(&mut g.model, dir, strength, true) {
                            if settings.adapter.is_some() {
                                return Err(e.into());
                            }
                            let note = format!("{} is not applied: {e:#}", dir.display());
                            *write(&self.adapter_note) = Some(note);
                        }
                    }
                    Ok(Arc::new(g) as Arc<dyn Backend>)
                })
            } else {
                // llama.cpp applies the adapter's GGUF export (`patois adapter export --gguf`).
                let lora = adapter.as_ref().map(|d| d.join(GGUF_ADAPTER)).filter(|f| f.exists());
                if let (Some(dir), None) = (&adapter, &lora) {
                    *write(&self.adapter_note) = Some(format!(
                    "{} is not applied: llama.cpp runs this model and needs the adapter as GGUF; \
                     run `patois adapter export --gguf`, or set backend = \"candle\"",
                    dir.display()
                ));
                }
                let lora = lora.as_deref().map(|file| (file, strength));
                load_backend_with_lora(&path, kind, lora).map_err(anyhow::Error::from)
            };
        let loaded = loaded.map_err(|e| {
            if self.settings().model.is_none() && !path.exists() {
                Error::NoModel {
                    default: patois_models::Catalogue::builtin().default.clone(),
                    builtin: path.clone(),
                }
            } else {
                Error::Model { path: path.clone(), message: format!("{e:#}") }
            }
        });
        self.keep_loaded(loaded, stamp)
    }

    /// Keeps a loaded model for the next requests, or the failure (not tried again until
    /// the file or the settings change) for the status.
    fn keep_loaded(
        &self,
        loaded: Result<Arc<dyn Backend>>,
        stamp: ModelStamp,
    ) -> Result<Arc<dyn Backend>> {
        match loaded {
            Ok(g) => {
                *write(&self.generator) = Some(g.clone());
                *write(&self.model_error) = None;
                Ok(g)
            }
            Err(e) => {
                *write(&self.model_error) = Some(e.to_string());
                *lock(&self.failed_load) = Some((stamp, e.clone()));
                Err(e)
            }
        }
    }

    /// The OpenAI-compatible server of the settings, with the tokenizer of the local model
    /// at `local` (the same family the server runs).
    fn remote_backend(&self, s: &Settings, local: &Path) -> Result<Arc<dyn Backend>> {
        let settings_file = self.root().join("patois.toml");
        let Some(endpoint) = &s.endpoint else {
            return Err(Error::Settings {
                path: settings_file,
                message: "backend = \"openai\" needs endpoint = \"http://HOST:PORT/v1\"".into(),
            });
        };
        let name = s.adapter_name.as_ref().or(s.model_name.as_ref());
        let mut opts = RemoteOptions::new(endpoint, name.map_or("default", String::as_str));
        if let Some(var) = &s.api_key_env {
            opts.api_key = std::env::var(var).ok();
            if opts.api_key.is_none() {
                return Err(Error::Settings {
                    path: settings_file,
                    message: format!("api_key_env names {var}, which is not set"),
                });
            }
        }
        let remote = RemoteBackend::new(opts, local)
            .map_err(|e| Error::Model { path: local.to_path_buf(), message: e.to_string() })?;
        // Budgets and templates use the local tokenizer: say so when the server's differs.
        if let Ok(Some(false)) = remote.check_tokenizer("fn main() {\n    let x = 1;\n}\n") {
            *write(&self.remote_note) = Some(format!(
                "{endpoint} tokenizes differently from the local model {}; set model to the \
                 GGUF file of the family the server runs",
                local.display()
            ));
        }
        Ok(Arc::new(remote))
    }

    /// The local model that completes while the inference server is unreachable.
    fn local_fallback(&self) -> Result<Arc<dyn Backend>> {
        if let Some(g) = read(&self.fallback).as_ref() {
            return Ok(g.clone());
        }
        let path = self.model_path();
        let g = load_backend(&path, BackendKind::Auto)
            .map_err(|e| Error::Model { path, message: e.to_string() })?;
        *write(&self.fallback) = Some(g.clone());
        Ok(g)
    }

    /// Runs `g`; an unreachable server is noted (and not asked again for a while) and the
    /// local model completes instead when `fallback` (the setting) allows.
    fn run_model(
        &self,
        g: &Arc<dyn Backend>,
        prompt: &str,
        suffix: &str,
        opts: &GenOptions,
        ticket: &Ticket,
        fallback: bool,
    ) -> Result<patois_generate::Completion> {
        let down = lock(&self.remote_down).is_some_and(|until| Instant::now() < until);
        let cancelled = || ticket.is_cancelled();
        if !(down && fallback) {
            match g.complete(prompt, suffix, opts, &cancelled) {
                Ok(c) => {
                    if lock(&self.remote_down).take().is_some() {
                        *write(&self.remote_note) = None;
                    }
                    return Ok(c);
                }
                Err(e @ GenError::Unreachable { .. }) => {
                    let note = if fallback {
                        format!("{e}; completing with the local model meanwhile")
                    } else {
                        e.to_string()
                    };
                    *write(&self.remote_note) = Some(note.clone());
                    *lock(&self.remote_down) = Some(Instant::now() + REMOTE_RETRY);
                    if !fallback {
                        return Err(Error::Remote(note));
                    }
                }
                Err(e @ GenError::Rejected { .. }) => {
                    *write(&self.remote_note) = Some(e.to_string());
                    return Err(Error::Remote(e.to_string()));
                }
                Err(e) => return Err(Error::generation(e)),
            }
        }
        let local = self.local_fallback()?;
        local.complete(prompt, suffix, opts, &cancelled).map_err(Error::generation)
    }

    /// Uses an already loaded generator (tests, benchmarks).
    pub fn set_generator(&self, g: Arc<dyn Backend>) {
        *write(&self.generator) = Some(g);
    }

    pub fn update_index(&self, opts: &UpdateOptions, progress: &dyn Progress) -> Result<Report> {
        let r = self.index.update(opts, progress).map_err(Error::index)?;
        *lock(&self.last_items) = None;
        self.clear_completion_cache();
        Ok(r)
    }

    /// Records an open or changed document (its unsaved text is what completions read).
    pub fn document_changed(&self, path: &str, text: Arc<String>, edit_line: u32) {
        let seq = self.seq.fetch_add(1, Ordering::SeqCst) + 1;
        let mut docs = lock(&self.docs);
        if let Some(before) = docs.get(path).map(|d| d.text.clone()) {
            lock(&self.edits).record(path, &before, &text, edit_line);
        }
        docs.insert(path.to_string(), DocState { text, edit_line, seq });
    }

    /// Forgets the recorded edits (benchmarks compare with and without them).
    pub fn forget_edits(&self) {
        *lock(&self.edits) = edits::EditLog::default();
    }

    pub fn document_closed(&self, path: &str) {
        lock(&self.docs).remove(path);
    }

    /// The open documents other than `path`, most recently edited first.
    fn recent(&self, path: &str) -> Vec<RecentDoc> {
        let docs = lock(&self.docs);
        let mut v: Vec<(&String, &DocState)> =
            docs.iter().filter(|(p, _)| p.as_str() != path).collect();
        v.sort_by_key(|d| std::cmp::Reverse(d.1.seq));
        v.into_iter()
            .map(|(p, d)| RecentDoc {
                path: p.clone(),
                text: d.text.clone(),
                edit_line: d.edit_line,
            })
            .collect()
    }

    fn check_document(&self, path: &str, text: &str) -> Result<()> {
        let s = self.settings();
        if text.len() > s.max_document_bytes {
            return Err(Error::DocumentTooLarge {
                path: path.to_string(),
                bytes: text.len(),
                limit: s.max_document_bytes,
            });
        }
        if let Some(lang) = patois_syntax::language_for_path(Path::new(path)) {
            if s.disabled_languages.iter().any(|l| l == lang.name) {
                return Err(Error::LanguageDisabled { language: lang.name.to_string() });
            }
        }
        Ok(())
    }

    /// Retrieval for a cursor, within the budget (tokens when a model is loaded).
    pub fn context(
        &self,
        path: &str,
        text: &str,
        cursor: usize,
        budget: usize,
    ) -> Result<patois_retrieve::Retrieved> {
        let g = read(&self.generator).clone();
        let count_tokens = |s: &str| g.as_ref().map(|g| g.count(s)).unwrap_or_else(|| chars(s));
        let recent = self.recent(path);
        let edits = {
            let docs = lock(&self.docs);
            lock(&self.edits).hunks(|p| docs.get(p).map(|d| d.text.clone()))
        };
        let req = Request {
            path,
            text,
            cursor,
            recent: &recent,
            edits: &edits,
            budget: Budget { limit: budget, count: &count_tokens },
        };
        retrieve(&self.index, &req, &Options::default()).map_err(Error::retrieval)
    }

    /// Starts a request for `path`: newer requests for the same document cancel it.
    pub fn begin(&self, path: &str) -> Ticket {
        let seq = self.seq.fetch_add(1, Ordering::SeqCst) + 1;
        let mut latest = lock(&self.latest);
        let slot = latest.entry(path.to_string()).or_insert_with(|| Arc::new(AtomicU64::new(0)));
        slot.store(seq, Ordering::SeqCst);
        Ticket { seq, latest: slot.clone(), cancelled: Arc::new(AtomicBool::new(false)) }
    }

    /// An inline completion at `cursor` (a byte offset in `text`).
    pub fn complete(
        &self,
        path: &str,
        text: &str,
        cursor: usize,
        ticket: &Ticket,
    ) -> Result<CompletionResult> {
        self.check_document(path, text)?;
        let t0 = Instant::now();
        let cursor = cursor.min(text.len());
        let cursor = (0..=cursor).rev().find(|c| text.is_char_boundary(*c)).unwrap_or(0);
        let (prefix, suffix) = text.split_at(cursor);
        let key = (path.to_string(), hash(prefix) ^ hash(suffix).rotate_left(1));
        let settings = self.settings();
        let hit = if settings.cache {
            lock(&self.completions).entries.iter().find(|(k, _)| *k == key).map(|(_, r)| r.clone())
        } else {
            None
        };
        let hit =
            hit.or_else(|| settings.cache.then(|| self.typed_into_last(path, prefix, suffix))?);
        if let Some(hit) = hit {
            let mut hit = hit;
            hit.cached = true;
            hit.ms = Timings { total: t0.elapsed().as_secs_f64() * 1e3, ..Default::default() };
            return Ok(hit);
        }
        // A zero budget asks for no retrieved context: no continuation either.
        let continued =
            (settings.budget > 0).then(|| self.continue_existing(path, text, cursor, t0)).flatten();
        let result = match continued {
            Some(r) => r,
            None => self.generate(path, text, cursor, &settings, ticket, t0)?,
        };
        if result.stop != StopReason::Cancelled && !result.text.trim().is_empty() {
            *lock(&self.last_shown) = Some(Shown {
                path: path.to_string(),
                prefix: prefix.to_string(),
                suffix: suffix.to_string(),
                result: result.clone(),
            });
        }
        if result.stop != StopReason::Cancelled {
            let mut cache = lock(&self.completions);
            if cache.entries.len() >= CACHE_ENTRIES {
                cache.entries.remove(0);
            }
            cache.entries.push((key, result.clone()));
        }
        Ok(result)
    }

    /// The model's completion at `cursor`, with the retrieved context in its prompt.
    fn generate(
        &self,
        path: &str,
        text: &str,
        cursor: usize,
        settings: &Settings,
        ticket: &Ticket,
        t0: Instant,
    ) -> Result<CompletionResult> {
        let (prefix, suffix) = text.split_at(cursor);
        let g = self.load_model()?;
        if !settings.cache {
            g.clear_cache();
        }
        let line = patois_syntax::Lines::new(text).line(cursor);
        let last = lock(&self.last_items).clone();
        let items = match last {
            Some((p, l, items)) if p == path && l == line => items,
            last => {
                let mut items = self.context(path, text, cursor, settings.budget)?.items;
                if let Some((_, _, before)) = last.filter(|(p, _, _)| p == path) {
                    keep_order_of(&mut items, &before);
                }
                *lock(&self.last_items) = Some((path.to_string(), line, items.clone()));
                items
            }
        };
        let t_retrieval = t0.elapsed().as_secs_f64() * 1e3;
        let comment = patois_syntax::language_for_path(Path::new(path))
            .map(|l| l.line_comment)
            .unwrap_or("#");
        let input = Input { path, comment, prefix, suffix, items: &items };
        let window = settings.prompt_window(g.info().context);
        let limits = Limits::for_window(window);
        let prompt = build(g.info().fim, &input, limits, g.as_ref());
        let t_prompt = t0.elapsed().as_secs_f64() * 1e3 - t_retrieval;
        let mode = decide_mode(path, text, cursor);
        let line_start = prefix.rfind('\n').map(|i| i + 1).unwrap_or(0);
        let indent = prefix[line_start..].chars().take_while(|c| *c == ' ' || *c == '\t').count();
        let opts =
            GenOptions { max_tokens: settings.max_tokens, mode, indent, ..Default::default() };
        let c =
            self.run_model(&g, &prompt.text, suffix, &opts, ticket, settings.fallback_to_local)?;
        let typed_indent_only = indent > 0 && prefix[line_start..].trim().is_empty();
        let text = if typed_indent_only { drop_extra_indent(&c.text) } else { c.text };
        let text = before_fence(&text).to_string();
        Ok(CompletionResult {
            text,
            stop: c.stop,
            mode,
            tokens: c.tokens,
            prompt_tokens: c.prompt_tokens,
            cache_hit_tokens: c.cache_hit_tokens,
            cached: false,
            ms: Timings {
                retrieval: t_retrieval,
                prompt: t_prompt,
                prefill: c.prefill_ms,
                decode: c.decode_ms,
                total: t0.elapsed().as_secs_f64() * 1e3,
            },
            citations: prompt.citations,
        })
    }

    /// The line that follows the cursor's two previous lines elsewhere in the repository,
    /// when they are found together (see [`patois_retrieve::continuation`]): no model runs.
    fn continue_existing(
        &self,
        path: &str,
        text: &str,
        cursor: usize,
        t0: Instant,
    ) -> Option<CompletionResult> {
        let found = patois_retrieve::continuation(&self.index, path, text, cursor).ok()??;
        let ms = t0.elapsed().as_secs_f64() * 1e3;
        Some(CompletionResult {
            text: found.line,
            stop: StopReason::EndOfLine,
            mode: Mode::SingleLine,
            tokens: 0,
            prompt_tokens: 0,
            cache_hit_tokens: 0,
            cached: false,
            ms: Timings { retrieval: ms, total: ms, ..Default::default() },
            citations: vec![found.citation],
        })
    }

    /// The rest of the last completion shown in `path` when the user has since typed its
    /// beginning: the ghost text stays, shortened, without running the model.
    fn typed_into_last(&self, path: &str, prefix: &str, suffix: &str) -> Option<CompletionResult> {
        let last = lock(&self.last_shown);
        let last = last.as_ref().filter(|l| l.path == path)?;
        let rest =
            rest_after_typing(&last.prefix, &last.suffix, &last.result.text, prefix, suffix)?;
        Some(CompletionResult { text: rest.to_string(), tokens: 0, ..last.result.clone() })
    }

    /// Forgets cached completions (so a benchmark can measure without them).
    pub fn clear_completion_cache(&self) {
        *lock(&self.last_shown) = None;
        lock(&self.completions).entries.clear();
    }

    pub fn status(&self) -> Status {
        let (files, commits, head) =
            self.index.with_manifest(|m| (m.files.len(), m.commits, m.head.clone()));
        let choice = self.model_choice();
        let adapter = self.adapter_path();
        Status {
            root: self.root().to_path_buf(),
            index_dir: self.index.dir().to_path_buf(),
            files,
            commits,
            head,
            model: read(&self.generator).as_ref().map(|g| g.info().clone()),
            model_path: choice.path,
            model_source: choice.source,
            model_error: read(&self.model_error).clone(),
            prompts_go_to: self.prompts_go_to(),
            remote_note: read(&self.remote_note).clone(),
            adapter_strength: adapter.as_deref().and_then(|a| self.strength_of(Some(a)).ok()),
            adapter,
            adapter_note: read(&self.adapter_note).clone(),
            drift: self.drift(),
        }
    }
}

impl Engine {
    /// What happened with the inference server (unreachable, refused), if anything.
    pub fn remote_note(&self) -> Option<String> {
        read(&self.remote_note).clone()
    }

    /// Where prompts are sent, for the status.
    fn prompts_go_to(&self) -> String {
        let s = self.settings();
        match (&s.backend, &s.endpoint) {
            (BackendKind::Openai, Some(endpoint)) => {
                let name = s.adapter_name.as_ref().or(s.model_name.as_ref());
                let fallback = if s.fallback_to_local {
                    "; the local model completes while it is unreachable"
                } else {
                    ""
                };
                format!("{endpoint} (model {}){fallback}", name.map_or("default", String::as_str))
            }
            _ => "local (this process; nothing leaves the machine)".into(),
        }
    }
}

/// How long an unreachable inference server is left alone before it is asked again.
const REMOTE_RETRY: std::time::Duration = std::time::Duration::from_secs(30);

/// A request in flight: cancelled explicitly or by a newer request for the same document.
#[derive(Clone)]
pub struct Ticket {
    seq: u64,
    latest: Arc<AtomicU64>,
    cancelled: Arc<AtomicBool>,
}

impl Ticket {
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
    }
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst) || self.latest.load(Ordering::SeqCst) != self.seq
    }
    /// A ticket nothing cancels (command-line use).
    pub fn detached() -> Ticket {
        Ticket {
            seq: 0,
            latest: Arc::new(AtomicU64::new(0)),
            cancelled: Arc::new(AtomicBool::new(false)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{before_fence, drop_extra_indent, keep_order_of, rest_after_typing};

    #[test]
    fn a_markdown_fence_ends_the_completion() {
        assert_eq!(before_fence("```"), "");
        assert_eq!(before_fence("x();\n```\nprose"), "x();");
        assert_eq!(before_fence("/// ```\n/// x();"), "/// ```\n/// x();", "a doc example stays");
        assert_eq!(before_fence("a\nb"), "a\nb");
    }

    #[test]
    fn a_completion_after_typed_indentation_is_not_indented_again() {
        assert_eq!(drop_extra_indent("    x = 1;"), "x = 1;");
        assert_eq!(drop_extra_indent("x = 1;"), "x = 1;");
        // The block keeps its shape, shifted left by the first line's extra indentation.
        assert_eq!(drop_extra_indent("  if a {\n      b();\n  }"), "if a {\n    b();\n}");
        assert_eq!(drop_extra_indent("    a\nb"), "a\nb");
    }
    use patois_retrieve::{Citation, Item, Score, Source};

    fn item(path: &str) -> Item {
        Item {
            source: Source::Definition,
            citation: Citation {
                path: path.into(),
                start_line: 1,
                end_line: 2,
                commit: None,
                pr: None,
            },
            title: String::new(),
            text: String::new(),
            score: Score { source_rank: 0, source_score: 1.0, fused: 0.1, reason: String::new() },
        }
    }

    #[test]
    fn items_of_the_previous_prompt_keep_their_place_new_ones_follow_in_rank_order() {
        let before = [item("a"), item("b"), item("c")];
        let mut now = [item("x"), item("c"), item("y"), item("a")];
        keep_order_of(&mut now, &before);
        let order: Vec<&str> = now.iter().map(|i| i.citation.path.as_str()).collect();
        assert_eq!(order, ["a", "c", "x", "y"]);
    }

    #[test]
    fn typing_the_ghost_text_leaves_its_rest() {
        let (p, s, c) = ("let x = ", "\n}", "store.get(key);");
        assert_eq!(rest_after_typing(p, s, c, "let x = st", s), Some("ore.get(key);"));
        assert_eq!(rest_after_typing(p, s, c, "let x = sx", s), None, "typed something else");
        assert_eq!(rest_after_typing(p, s, c, p, s), None, "typed nothing");
        assert_eq!(rest_after_typing(p, s, c, "let x = store.get(key);", s), None, "typed it all");
        assert_eq!(rest_after_typing(p, s, c, "let x = st", "\n}\n"), None, "the suffix changed");
        assert_eq!(rest_after_typing(p, s, c, "let y = st", s), None, "edited before the cursor");
    }
}
