//! What the engine sees when a model cannot be loaded or run.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Nothing usable at the path: no file, or a folder without model files.
    #[error("{message}")]
    Missing { path: PathBuf, message: String },
    /// The file is there but cannot be run (not a model, an unsupported architecture or
    /// tokenizer, a backend that cannot start).
    #[error("{message}")]
    Load { path: PathBuf, message: String },
    /// Running the model failed.
    #[error("{0}")]
    Generation(String),
    /// The inference server could not be reached (down, wrong address, timed out).
    #[error("the inference server at {endpoint} is unreachable: {message}")]
    Unreachable { endpoint: String, message: String },
    /// The inference server answered with an error status.
    #[error("the inference server at {endpoint} refused the request (HTTP {status}){}: {message}",
        if *status == 401 || *status == 403 { "; check the API key (api_key_env)" } else { "" })]
    Rejected { endpoint: String, status: u16, message: String },
}

impl From<anyhow::Error> for Error {
    fn from(e: anyhow::Error) -> Error {
        Error::Generation(format!("{e:#}"))
    }
}

impl From<candle_core::Error> for Error {
    fn from(e: candle_core::Error) -> Error {
        Error::Generation(e.to_string())
    }
}
