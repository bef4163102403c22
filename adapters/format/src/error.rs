//! What can go wrong reading, writing or applying an adapter, with the file concerned.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{doing} {}: {source}", path.display())]
    Io { doing: &'static str, path: PathBuf, source: std::io::Error },
    /// The file is there but is not what patois (or PEFT) writes.
    #[error("{}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
    #[error("{}: {source}", path.display())]
    Tensors { path: PathBuf, source: candle_core::Error },
    /// The model refused the adapter's updates.
    #[error("applying the adapter in {}: {message}", dir.display())]
    Apply { dir: PathBuf, message: String },
    #[error(transparent)]
    Index(#[from] patois_index::Error),
    #[error(transparent)]
    Git(#[from] patois_vcs::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn io<'p>(
    doing: &'static str,
    path: &'p Path,
) -> impl FnOnce(std::io::Error) -> Error + 'p {
    move |source| Error::Io { doing, path: path.to_path_buf(), source }
}

pub(crate) fn invalid(path: &Path, message: impl std::fmt::Display) -> Error {
    Error::Invalid { path: path.to_path_buf(), message: message.to_string() }
}
