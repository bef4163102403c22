//! The model in effect: which one and why, loading it (with its adapter), the
//! inference server and the local model that stands in while it is unreachable.

use crate::{
    adapter_dir, budget, builtin_model_dir, lock, read, write, BackendKind, Engine, Error, Result,
    Settings, Speed, GGUF_ADAPTER,
};
use budget::Fit;
use patois_generate::openai::{RemoteBackend, RemoteOptions};
use patois_generate::Error as GenError;
use patois_generate::{
    load_backend, load_backend_with_lora, Backend, GenOptions, Generator, Runner,
};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// The model in effect and why it was chosen.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelChoice {
    pub path: PathBuf,
    pub source: String,
}

/// The speed `patois model install` measured.
fn speed_at_install(m: &patois_models::Measured) -> Speed {
    Speed {
        prefill_tokens_per_s: m.prefill_tokens_per_s,
        decode_tokens_per_s: m.decode_tokens_per_s,
    }
}

/// A model file as it was when loading it was tried.
pub(crate) type ModelStamp = (PathBuf, Option<std::time::SystemTime>);

impl Engine {
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
        let passed_over = match self.fastest_fitting(&catalogue) {
            Ok(choice) => return choice,
            Err(passed_over) => passed_over,
        };
        let default = catalogue.default_entry();
        if let Some(p) = default.installed_in(&self.models_home) {
            let why = if passed_over.is_empty() {
                String::new()
            } else {
                format!(" (no installed model fits here: {})", passed_over.join("; "))
            };
            return ModelChoice {
                path: p,
                source: format!("the installed default model {}{why}", default.name),
            };
        }
        let builtin = builtin_model_dir(self.index.dir());
        ModelChoice {
            path: builtin,
            source: "the built-in model trained on this repository".into(),
        }
    }

    /// The best installed catalogue model measured fast enough for the latency budget and
    /// to keep up with typing on this machine (`patois model install` measures), else why
    /// each measured one was passed over.
    fn fastest_fitting(
        &self,
        catalogue: &patois_models::Catalogue,
    ) -> std::result::Result<ModelChoice, Vec<String>> {
        let settings = self.settings();
        let (budget, order) = (settings.latency_budget_ms, settings.fim_order);
        let mut passed_over = Vec::new();
        for name in &catalogue.best_first {
            let Some(entry) = catalogue.get(name).ok() else { continue };
            let Some(path) = entry.installed_in(&self.models_home) else { continue };
            let Some(m) = patois_models::Measured::load(entry, &self.models_home) else {
                continue;
            };
            let ms = speed_at_install(&m).keystroke_ms(order);
            let why = match Fit::of(ms, budget) {
                Fit::Fits => {
                    let passed_over: String =
                        passed_over.iter().map(|p| format!("; {p}")).collect();
                    let source = format!(
                        "{name}, the best installed model that fits the latency budget here and \
                         keeps up with typing (a first line after a keystroke: {ms:.0} ms, \
                         budget {budget} ms, measured at install on {}){passed_over}",
                        m.cpu
                    );
                    return Ok(ModelChoice { path, source });
                }
                Fit::OverBudget => "over the latency budget",
                Fit::FallsBehind => "too slow to keep up with typing",
            };
            passed_over.push(format!("{name} passed over: {ms:.0} ms, {why}"));
        }
        Err(passed_over)
    }

    /// The speed `patois model install` measured on this CPU for the catalogue model
    /// installed at `path`, if it is one.
    fn measured_at_install(&self, path: &Path) -> Option<Speed> {
        let catalogue = patois_models::Catalogue::builtin();
        let entry = catalogue
            .best_first
            .iter()
            .filter_map(|n| catalogue.get(n).ok())
            .find(|e| e.installed_in(&self.models_home).is_some_and(|p| p == path))?;
        patois_models::Measured::load(entry, &self.models_home).map(|m| speed_at_install(&m))
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
    pub(crate) fn strength_of(&self, adapter: Option<&Path>) -> Result<f32> {
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
        let loaded = match patois_generate::runner(&path, kind) {
            Ok(Runner::Candle) => self.load_candle(&path, adapter.as_deref(), strength),
            Ok(Runner::Llama(_)) => {
                // llama.cpp applies the adapter's GGUF export (`patois adapter export --gguf`).
                let lora = adapter.as_ref().map(|d| d.join(GGUF_ADAPTER)).filter(|f| f.exists());
                if let (Some(dir), None) = (&adapter, &lora) {
                    *write(&self.adapter_note) = Some(format!(
                        "{} is not applied: llama.cpp runs this model and needs the adapter as \
                         GGUF; run `patois adapter export --gguf`, or set backend = \"candle\"",
                        dir.display()
                    ));
                }
                let lora = lora.as_deref().map(|file| (file, strength));
                load_backend_with_lora(&path, kind, lora).map_err(anyhow::Error::from)
            }
            Err(e) => Err(e.into()),
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

    /// Our candle decoder with the adapter merged into its weights (a configured adapter
    /// that cannot be applied is an error; the default one is left out with a note).
    fn load_candle(
        &self,
        path: &Path,
        adapter: Option<&Path>,
        strength: f32,
    ) -> anyhow::Result<Arc<dyn Backend>> {
        let mut g = Generator::load(path, &patois_generate::device())?;
        if let Some(dir) = adapter {
            if let Err(e) = patois_adapter::apply(&mut g.model, dir, strength, true) {
                if self.settings().adapter.is_some() {
                    return Err(e.into());
                }
                *write(&self.adapter_note) =
                    Some(format!("{} is not applied: {e:#}", dir.display()));
            }
        }
        Ok(Arc::new(g))
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
                let local = g.info().backend.is_local();
                self.speed.set(if local { budget::calibrate(g.as_ref()) } else { None });
                // The install's measurement, taken with nothing else running, is a steadier
                // base for the prompt's size than one taken while the index builds.
                if let Some(installed) = self.measured_at_install(&stamp.0).filter(|_| local) {
                    self.speed.set_at_load(installed);
                }
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
    pub(crate) fn run_model(
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

    /// What happened with the inference server (unreachable, refused), if anything.
    pub fn remote_note(&self) -> Option<String> {
        read(&self.remote_note).clone()
    }

    /// Where prompts are sent, for the status.
    pub(crate) fn prompts_go_to(&self) -> String {
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
