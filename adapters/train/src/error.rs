//! What can stop a training run, typed for the command line and the server.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no training data: the index has no source files to learn from")]
    NoData,
    #[error(transparent)]
    Index(#[from] patois_index::Error),
    #[error(transparent)]
    Adapter(#[from] patois_adapter::Error),
    /// The model or the training loop failed.
    #[error("training failed: {0}")]
    Training(String),
}

impl Error {
    /// The typed error inside an error from the training code, else its message.
    pub(crate) fn from_chain(e: anyhow::Error) -> Error {
        let e = match e.downcast::<Error>() {
            Ok(typed) => return typed,
            Err(e) => e,
        };
        let e = match e.downcast::<patois_index::Error>() {
            Ok(typed) => return Error::Index(typed),
            Err(e) => e,
        };
        match e.downcast::<patois_adapter::Error>() {
            Ok(typed) => Error::Adapter(typed),
            Err(e) => Error::Training(format!("{e:#}")),
        }
    }
}
