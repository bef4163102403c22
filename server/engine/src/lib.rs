//! The engine: the one API the CLI and the LSP layer call. It owns the index, the
//! model, the open documents, and per-document cancellation; it runs
//! retrieval → prompt → generation and says how long each part took.

mod budget;
mod complete;
mod edits;
mod error;
mod explain;
mod jobs;
mod settings;
mod ticket;
pub use budget::{measure_model, Speed};
pub use complete::Run;
pub use error::{Error, Result};
pub use explain::{explain, Entry, Explanation, Section};
pub use patois_adapter::{CommitsSince, Drift};
pub use patois_generate::{BackendKind, Mode, StopReason};
pub use patois_retrieve::{Citation, Item, Source};
pub use settings::Settings;
pub use ticket::Ticket;

use complete::{CompletionCache, Shown};
use patois_generate::openai::{RemoteBackend, RemoteOptions};
use patois_generate::Error as GenError;
use patois_generate::{load_backend, load_backend_with_lora, Backend, GenOptions, Generator};
use patois_index::{Index, Progress, Report, UpdateOptions};
use patois_retrieve::{chars, retrieve, Budget, Options, RecentDoc, Request};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Instant;

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
    /// Tokens the prompt was allowed: the settings' window, or less when the latency
    /// budget could not afford it at the measured speed (0 when no model ran).
    #[serde(default)]
    pub prompt_window: usize,
    /// The budget made the prompt smaller than the settings allow: prefilling the full
    /// prompt in the background ([`Engine::warm`]) lets the next completion have it.
    #[serde(default)]
    pub shrunk: bool,
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
    /// The model's speed measured on this machine (at load, then from every completion).
    pub speed: Option<Speed>,
    /// The latency budget in effect (milliseconds; 0: none).
    pub latency_budget_ms: u64,
    /// The prompt size the last completion was allowed, and the most the settings allow.
    pub prompt_window: Option<usize>,
    pub full_prompt_window: Option<usize>,
}

struct DocState {
    text: Arc<String>,
    edit_line: u32,
    seq: u64,
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
    /// Request numbers, for cancellation by newer requests and edits.
    tickets: ticket::Tickets,
    /// The model's measured speed, which sizes prompts to the latency budget.
    speed: budget::SpeedMeter,
    /// The prompt window of the last completion, for the status.
    last_window: Mutex<Option<usize>>,
    /// Retrieval of the last request: reused while the cursor stays on the same line,
    /// so the prompt's beginning (and its KV cache) stays the same while typing.
    last_items: Mutex<Option<(String, u32, Vec<Item>)>>,
    completions: Mutex<CompletionCache>,
    /// The last completion the model made, for typing into it.
    last_shown: Mutex<Option<Shown>>,
    /// The generation running per document, which requests typed on from it wait for.
    jobs: Mutex<HashMap<String, Arc<jobs::Job>>>,
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
            tickets: ticket::Tickets::default(),
            speed: budget::SpeedMeter::default(),
            last_window: Mutex::new(None),
            last_items: Mutex::new(None),
            completions: Mutex::new(CompletionCache::default()),
            last_shown: Mutex::new(None),
            jobs: Mutex::new(HashMap::new()),
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
        if let Some(choice) = self.fastest_fitting(&catalogue) {
            return choice;
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

    /// The best installed catalogue model measured fast enough for the latency budget on
    /// this machine (`patois model install` measures), when there is one.
    fn fastest_fitting(&self, catalogue: &patois_models::Catalogue) -> Option<ModelChoice> {
        let budget = self.settings().latency_budget_ms as f64;
        catalogue.best_first.iter().find_map(|name| {
            let entry = catalogue.get(name).ok()?;
            let path = entry.installed_in(&self.models_home)?;
            let m = patois_models::Measured::load(entry, &self.models_home)?;
            let speed = Speed {
                prefill_tokens_per_s: m.prefill_tokens_per_s,
                decode_tokens_per_s: m.decode_tokens_per_s,
            };
            let ms = speed.keystroke_ms();
            (budget == 0.0 || ms <= budget).then(|| ModelChoice {
                path,
                source: format!(
                    "{name}, the best installed model that fits the latency budget here \
                     (a first line after a keystroke: {ms:.0} ms of {budget:.0}, measured at \
                     install on {})",
                    m.cpu
                ),
            })
        })
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

    /// Uses `speed` as the measured speed (`None`: not measured yet), as if measured.
    pub fn set_speed(&self, speed: Option<Speed>) {
        self.speed.set(speed);
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
                let local = matches!(g.info().backend.as_str(), "llama.cpp" | "candle");
                self.speed.set(if local { budget::calibrate(g.as_ref()) } else { None });
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
        cancelled: &dyn Fn() -> bool,
        fallback: bool,
    ) -> Result<patois_generate::Completion> {
        let down = lock(&self.remote_down).is_some_and(|until| Instant::now() < until);
        if !(down && fallback) {
            match g.complete(prompt, suffix, opts, cancelled) {
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
        local.complete(prompt, suffix, opts, cancelled).map_err(Error::generation)
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
    /// Requests in flight for `path`, and background work, become stale.
    pub fn document_changed(&self, path: &str, text: Arc<String>, edit_line: u32) {
        let before = lock(&self.docs).get(path).map(|d| d.text.clone());
        // The diff is taken outside the documents' lock: the model's cancellation check
        // reads them while it runs.
        if let Some(before) = before {
            lock(&self.edits).record(path, &before, &text, edit_line);
        }
        let seq = self.tickets.next_seq();
        lock(&self.docs).insert(path.to_string(), DocState { text, edit_line, seq });
        // After the text is in place: a generation that sees the new number reads it.
        self.tickets.bump(path);
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
        self.tickets.begin(path)
    }

    /// Starts background work for `path`: any request or edit, in any document, stops it.
    pub fn begin_background(&self, path: &str) -> Ticket {
        self.tickets.begin_background(path)
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
        let settings = self.settings();
        let model = read(&self.generator).as_ref().map(|g| g.info().clone());
        let full_prompt_window = model.as_ref().map(|m| settings.prompt_window(m.context));
        Status {
            root: self.root().to_path_buf(),
            index_dir: self.index.dir().to_path_buf(),
            files,
            commits,
            head,
            model,
            model_path: choice.path,
            model_source: choice.source,
            model_error: read(&self.model_error).clone(),
            prompts_go_to: self.prompts_go_to(),
            remote_note: read(&self.remote_note).clone(),
            adapter_strength: adapter.as_deref().and_then(|a| self.strength_of(Some(a)).ok()),
            adapter,
            adapter_note: read(&self.adapter_note).clone(),
            drift: self.drift(),
            speed: self.speed.get(),
            latency_budget_ms: settings.latency_budget_ms,
            prompt_window: *lock(&self.last_window),
            full_prompt_window,
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
