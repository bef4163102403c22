//! What the status request reports.

use crate::{lock, read, Engine, ModelRuns, Speed};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

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
    /// Milliseconds from a keystroke to a first line of ghost text at that speed, the
    /// prompt otherwise cached.
    pub keystroke_ms: Option<f64>,
    /// The latency budget in effect (milliseconds; 0: none).
    pub latency_budget_ms: u64,
    /// The prompt size the last completion was allowed, and the largest completions have
    /// here (the settings' window, under the budget at most what this machine prefills
    /// while the user pauses).
    pub prompt_window: Option<usize>,
    pub full_prompt_window: Option<usize>,
    /// How the model's runs went since the server started.
    pub runs: ModelRuns,
}

impl Engine {
    pub fn status(&self) -> Status {
        let (files, commits, head) =
            self.index.with_manifest(|m| (m.files.len(), m.commits, m.head.clone()));
        let choice = self.model_choice();
        let adapter = self.adapter_path();
        let settings = self.settings();
        let model = read(&self.generator).as_ref().map(|g| g.info().clone());
        let full_prompt_window =
            model.as_ref().map(|m| self.full_window(&settings, m.context, true));
        let speed = self.speed.get();
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
            speed,
            keystroke_ms: speed.map(|s| s.keystroke_ms(settings.fim_order)),
            latency_budget_ms: settings.latency_budget_ms,
            prompt_window: *lock(&self.last_window),
            full_prompt_window,
            runs: self.runs.get(),
        }
    }
}
