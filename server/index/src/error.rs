//! What can go wrong with the index, with the file or folder it concerns.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or folder of the index (or one it reads) could not be read or written.
    #[error("{doing} {}: {source}", path.display())]
    Io { doing: &'static str, path: PathBuf, source: std::io::Error },
    /// A file patois wrote or reads is not what it expects (a manifest, a PR export).
    #[error("{}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
    #[error(
        "another patois process is writing the index in {}; wait for it to finish or stop it",
        dir.display()
    )]
    Locked { dir: PathBuf },
    #[error("the index: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
    #[error(transparent)]
    Git(#[from] patois_vcs::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Maps an I/O error on `path` while `doing` something.
pub(crate) fn io<'p>(
    doing: &'static str,
    path: &'p Path,
) -> impl FnOnce(std::io::Error) -> Error + 'p {
    move |source| Error::Io { doing, path: path.to_path_buf(), source }
}
