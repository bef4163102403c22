//! The engine's settings: `patois.toml`, the command line and the editor.

use crate::{Error, Result};
use patois_generate::BackendKind;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

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
    /// Milliseconds from a request to its first line of ghost text that completions aim
    /// for: the prompt is sized to the measured speed, decoding stops at it; 0: no limit.
    pub latency_budget_ms: u64,
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
            latency_budget_ms: 1000,
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
