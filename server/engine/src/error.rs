//! What can go wrong in the engine, typed so that callers (the LSP layer, the CLI) decide
//! what the user sees by the kind of error, never by its wording.

use std::path::PathBuf;

/// An engine error. Lower crates' failures keep their full message (with causes).
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// No model is configured, installed or trained.
    #[error(
        "no model yet: run `patois model install` to install the default model ({default}), \
         or `patois train` to make the small built-in one at {}, or set a model path",
        builtin.display()
    )]
    NoModel { default: String, builtin: PathBuf },
    /// The model file exists (or was configured) but could not be loaded.
    #[error("{message}")]
    Model { path: PathBuf, message: String },
    #[error(
        "{path} is {bytes} bytes; patois skips documents over {limit} bytes \
         (max_document_bytes)"
    )]
    DocumentTooLarge { path: String, bytes: usize, limit: usize },
    #[error("patois is disabled for {language} (disabled_languages)")]
    LanguageDisabled { language: String },
    /// `patois.toml` could not be read or parsed.
    #[error("{}: {message}; see the README for the keys", path.display())]
    Settings { path: PathBuf, message: String },
    #[error("the index failed: {0}")]
    Index(String),
    #[error("retrieval failed: {0}")]
    Retrieval(String),
    #[error("generation failed: {0}")]
    Generation(String),
    /// The inference server refused the request (a wrong API key, an unknown model name),
    /// or is unreachable with no local model to fall back on.
    #[error("{0}")]
    Remote(String),
}

impl Error {
    /// Errors that mean "nothing to offer here" rather than a failure of this request: an
    /// editor shows no ghost text and at most one note (the status says more), not an
    /// error per keystroke.
    pub fn is_quiet(&self) -> bool {
        matches!(
            self,
            Error::NoModel { .. }
                | Error::Model { .. }
                | Error::Remote(_)
                | Error::DocumentTooLarge { .. }
                | Error::LanguageDisabled { .. }
        )
    }

    pub(crate) fn index(e: impl Into<anyhow::Error>) -> Error {
        Error::Index(format!("{:#}", e.into()))
    }
    pub(crate) fn retrieval(e: impl Into<anyhow::Error>) -> Error {
        Error::Retrieval(format!("{:#}", e.into()))
    }
    pub(crate) fn generation(e: impl Into<anyhow::Error>) -> Error {
        Error::Generation(format!("{:#}", e.into()))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
