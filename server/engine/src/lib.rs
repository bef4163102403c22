//! The engine: the one API the CLI and the LSP layer call. It owns the index, the
//! model, the open documents, and per-document cancellation; it runs
//! retrieval → prompt → generation and says how long each part took.

pub mod answer;
mod ask;
mod completion;
mod dates;
mod documents;
mod edits;
mod error;
mod explain;
mod model;
mod next_edit;
mod settings;
mod status;
mod tally;
mod ticket;
pub use answer::{Answer, AnswerSource};
pub use ask::{Asked, Question};
pub use completion::budget::{measure_model, Fit, Speed, KEEPS_UP_MS};
pub use completion::Run;
pub use dates::{format_date, parse_date};
pub use error::{Error, Result};
pub use explain::{explain, Entry, Explanation, Follow, Section, SectionTitle};
pub use model::ModelChoice;
pub use next_edit::{rename_in, EditRule, NextEdit};
pub use patois_adapter::{CommitsSince, Drift};
pub use patois_generate::{BackendKind, Mode, ModelFormat, RunBy, StopReason};
pub use patois_retrieve::{Citation, Item, Source};
pub use patois_syntax::SymbolKind;
pub use settings::{Declared, Settings};
pub use status::Status;
pub use tally::{ModelRuns, RunCounts};
pub use ticket::Ticket;

use completion::budget;
use completion::cache::{CompletionCache, Shown};
use completion::jobs;
use documents::DocState;
use model::ModelStamp;
use patois_generate::Backend;
use patois_index::{Index, Progress, Report, UpdateOptions};
use patois_retrieve::{chars, retrieve, Budget, Options, Request};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Instant;

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
    /// How the model's runs went, for the status.
    runs: tally::RunTally,
    /// The prompt window of the last completion, for the status.
    last_window: Mutex<Option<usize>>,
    /// Retrieval of the last request, reused while the cursor stays in its place (see
    /// `completion::KeptItems`), so the prompt's beginning (and its KV cache) stays the
    /// same while typing.
    last_items: Mutex<Option<completion::KeptItems>>,
    completions: Mutex<CompletionCache>,
    /// The last completion the model made, for typing into it.
    last_shown: Mutex<Option<Shown>>,
    /// The generation running per document, which requests typed on from it wait for.
    jobs: Mutex<HashMap<String, Arc<jobs::Job>>>,
    /// Whether warm-ups go on (see `completion::warm`).
    warmups: completion::warm::Warmups,
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
            runs: tally::RunTally::default(),
            last_window: Mutex::new(None),
            last_items: Mutex::new(None),
            completions: Mutex::new(CompletionCache::default()),
            last_shown: Mutex::new(None),
            jobs: Mutex::new(HashMap::new()),
            warmups: completion::warm::Warmups::default(),
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
        let reload = s.reloads_model_from(&self.settings());
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
    pub fn update_index(&self, opts: &UpdateOptions, progress: &dyn Progress) -> Result<Report> {
        let r = self.index.update(opts, progress).map_err(Error::index)?;
        *lock(&self.last_items) = None;
        self.clear_completion_cache();
        Ok(r)
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
        let edits = self.recent_hunks();
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
        lock(&self.completions).clear();
    }
}
