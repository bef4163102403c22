//! The engine's settings: `patois.toml`, the command line and the editor.

use crate::{Error, Result};
use patois_generate::BackendKind;
use patois_prompt::FimOrder;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// One setting as declared: its name in `patois.toml` (snake_case; the editor's key is
/// its camelCase), what it does, and where it matters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declared {
    pub name: &'static str,
    pub doc: String,
    /// A change reloads the model.
    pub reloads_model: bool,
    /// VS Code's manifest (`editors/vscode/package.json`) offers it.
    pub in_editor: bool,
}

impl Declared {
    /// The key editors send it under: `latency_budget_ms` → `latencyBudgetMs`.
    pub fn editor_key(&self) -> String {
        let mut out = String::new();
        let mut upper = false;
        for c in self.name.chars() {
            match c {
                '_' => upper = true,
                c if upper => {
                    out.extend(c.to_uppercase());
                    upper = false;
                }
                c => out.push(c),
            }
        }
        out
    }
}

fn has_flag(flags: &[&str], flag: &str) -> bool {
    flags.contains(&flag)
}

/// Declares every setting once: the struct, its defaults, and [`Settings::declared`]
/// (from which the editor's keys, the reload rule and `docs/settings.md` follow).
/// Flags: `reload` (a change reloads the model), `editor` (in VS Code's manifest).
macro_rules! settings {
    ($( $(#[doc = $doc:literal])* $name:ident: $ty:ty = $default:expr, [$($flag:ident),*]; )*) => {
        /// Settings from the command line, `patois.toml` or the editor.
        #[derive(Debug, Clone, Serialize, Deserialize)]
        #[serde(default, deny_unknown_fields)]
        pub struct Settings {
            $( $(#[doc = $doc])* pub $name: $ty, )*
        }

        impl Default for Settings {
            fn default() -> Self {
                Settings { $( $name: $default, )* }
            }
        }

        impl Settings {
            /// Every setting, in declaration order.
            pub fn declared() -> Vec<Declared> {
                vec![$(
                    Declared {
                        name: stringify!($name),
                        doc: [$($doc.trim()),*].join(" "),
                        reloads_model: has_flag(&[$(stringify!($flag)),*], "reload"),
                        in_editor: has_flag(&[$(stringify!($flag)),*], "editor"),
                    },
                )*]
            }

            /// Whether going from `old` to these settings reloads the model.
            pub fn reloads_model_from(&self, old: &Settings) -> bool {
                $( has_flag(&[$(stringify!($flag)),*], "reload")
                    && self.$name != old.$name || )* false
            }
        }
    };
}

settings! {
    /// A `.gguf` file or model folder; none: the installed default model
    /// (`patois model install`), else the built-in model under the index folder.
    model: Option<PathBuf> = None, [reload, editor];
    /// What runs the model: `auto` (llama.cpp for GGUF, candle otherwise), `llama`,
    /// `candle`, or `openai` (an inference server at `endpoint`).
    backend: BackendKind = BackendKind::Auto, [reload];
    /// Context budget in tokens of the model's tokenizer (characters without a model).
    budget: usize = 384, [editor];
    /// Most tokens a completion may have.
    max_tokens: usize = 48, [editor];
    /// Most tokens a whole prompt may have (also capped by the model's context).
    prompt_tokens: usize = 1024, [];
    /// Milliseconds from a request to its first line of ghost text that completions aim
    /// for: the prompt is sized to the measured speed, decoding stops at it; 0: no limit.
    latency_budget_ms: u64 = 1000, [editor];
    /// Where a completion prompt puts the text after the cursor: `suffix_first` (a
    /// keystroke only appends to what the model has read; the default model's completions
    /// were also better so) or `prefix_first`.
    fim_order: FimOrder = FimOrder::SuffixFirst, [];
    /// Languages (registry names) patois stays silent in.
    disabled_languages: Vec<String> = Vec::new(), [editor];
    /// Documents larger than this many bytes are refused.
    max_document_bytes: usize = 2 << 20, [];
    /// Reuse the model's KV cache and earlier completions (off only to measure without them).
    cache: bool = true, [];
    /// A PEFT LoRA adapter applied at load; none: `adapters/house` under the index folder
    /// when it exists.
    adapter: Option<PathBuf> = None, [reload, editor];
    /// How strongly the adapter is applied, 0 to 4: 1 as trained, 0.5 halves every update;
    /// none: the strength in the adapter's `patois.json`, else 1.
    adapter_strength: Option<f32> = None, [reload, editor];
    /// With `backend = "openai"`: the server's API base, e.g. `http://gpu-box:8000/v1`.
    endpoint: Option<String> = None, [reload, editor];
    /// The model name sent to the server.
    model_name: Option<String> = None, [reload, editor];
    /// Sent instead of `model_name` when set: the house adapter as the server serves it
    /// (a vLLM `--lora-modules` or llama-server LoRA name).
    adapter_name: Option<String> = None, [reload, editor];
    /// The environment variable holding the server's API key (never the key itself).
    api_key_env: Option<String> = None, [reload, editor];
    /// Complete with the local model while the server is unreachable.
    fallback_to_local: bool = true, [editor];
    /// `patois serve` trains the house adapter while the editor is idle (opt-in): at
    /// low priority on one thread, paused at the next keystroke or request.
    train_when_idle: bool = false, [editor];
    /// Seconds without keystrokes or requests before idle training starts or resumes.
    idle_seconds: u64 = 120, [editor];
    /// Minutes of training per idle run (more than 0); the adapter is replaced when a run
    /// ends with a lower held-out loss than the adapter in place.
    idle_training_minutes: f64 = 10.0, [editor];
}

impl Settings {
    /// The tokens a prompt may have for a model with a `context`-token window: the
    /// configured prompt size or the window, less room for the completion.
    pub fn prompt_window(&self, context: usize) -> usize {
        context.min(self.prompt_tokens).saturating_sub(self.max_tokens)
    }

    /// What is wrong with a value the type allows, if anything.
    pub fn problem(&self) -> Option<String> {
        (self.idle_training_minutes <= 0.0 || self.idle_training_minutes.is_nan()).then(|| {
            format!(
                "idle_training_minutes is {}; it must be more than 0",
                self.idle_training_minutes
            )
        })
    }

    /// Reads `patois.toml` at the repository root, if there is one.
    pub fn from_repo(root: &Path) -> Result<Settings> {
        let p = root.join("patois.toml");
        if !p.exists() {
            return Ok(Settings::default());
        }
        let settings_error = |message: String| Error::Settings { path: p.clone(), message };
        let text = std::fs::read_to_string(&p).map_err(|e| settings_error(e.to_string()))?;
        let s: Settings = toml::from_str(&text).map_err(|e| settings_error(e.to_string()))?;
        match s.problem() {
            Some(problem) => Err(settings_error(problem)),
            None => Ok(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Settings;

    #[test]
    fn the_settings_that_name_the_model_reload_it() {
        let old = Settings::default();
        let budget = Settings { latency_budget_ms: 5, budget: 9, ..old.clone() };
        assert!(!budget.reloads_model_from(&old));
        let endpoint = Settings { endpoint: Some("http://x/v1".into()), ..old.clone() };
        assert!(endpoint.reloads_model_from(&old));
        let declared = Settings::declared();
        let key = |name: &str| declared.iter().find(|d| d.name == name).unwrap().editor_key();
        assert_eq!(key("latency_budget_ms"), "latencyBudgetMs");
        assert_eq!(key("model"), "model");
    }

    #[test]
    fn a_value_the_setting_does_not_allow_is_an_error_naming_the_file() {
        let dir = std::env::temp_dir().join(format!("patois-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("patois.toml"), "idle_training_minutes = 0\n").unwrap();
        let e = Settings::from_repo(&dir).unwrap_err().to_string();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(e.contains("patois.toml") && e.contains("idle_training_minutes"), "{e}");
    }
}
