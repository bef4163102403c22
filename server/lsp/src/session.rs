//! The server's state, and nothing else: the engine, the open documents as the client
//! holds them, what was negotiated at initialization, and the background workers' state
//! ([`crate::background`]). What acts on it lives in the handlers and the workers.

use crate::background::{idle_training::IdleTrainer, indexer::Indexer};
use crate::errors::invalid;
use crate::text::Encoding;
use dashmap::DashMap;
use patois_engine::Engine;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::Uri;
use tower_lsp_server::Client;

/// An open document: its text as the client holds it. A request takes a copy (the text is
/// shared), which later edits do not change.
#[derive(Clone)]
pub(crate) struct Doc {
    pub text: Arc<String>,
    /// The path relative to the workspace root.
    pub rel: String,
}

pub struct Session {
    pub(crate) client: Client,
    pub(crate) engine: OnceLock<Arc<Engine>>,
    pub(crate) root: OnceLock<PathBuf>,
    pub(crate) docs: DashMap<Uri, Doc>,
    /// How the client counts columns; set once, at `initialize`.
    pub(crate) encoding: OnceLock<Encoding>,
    pub(crate) indexer: Indexer,
    pub(crate) idle_training: Arc<IdleTrainer>,
    /// The last "nothing to offer" note logged, so that it is logged once, not per keystroke.
    pub(crate) last_note: Mutex<Option<String>>,
}

impl Session {
    pub fn new(client: Client) -> Session {
        Session {
            client,
            engine: OnceLock::new(),
            root: OnceLock::new(),
            docs: DashMap::new(),
            encoding: OnceLock::new(),
            indexer: Indexer::default(),
            idle_training: Arc::new(IdleTrainer::new()),
            last_note: Mutex::new(None),
        }
    }

    /// How the client counts columns (UTF-16 unless it offered UTF-8).
    pub(crate) fn encoding(&self) -> Encoding {
        self.encoding.get().copied().unwrap_or(Encoding::Utf16)
    }

    pub(crate) fn engine(&self) -> Result<Arc<Engine>> {
        self.engine.get().cloned().ok_or_else(|| {
            invalid("patois has no workspace folder open; open a folder inside a repository")
        })
    }

    /// The document as the client holds it now, or an error saying to open it first.
    pub(crate) fn snapshot(&self, uri: &Uri) -> Result<Doc> {
        match self.docs.get(uri) {
            Some(d) => Ok(d.clone()),
            None => Err(invalid(format!(
                "{} is not open; send textDocument/didOpen first",
                uri.as_str()
            ))),
        }
    }

    /// `uri`'s path relative to the workspace root (`/`-separated).
    pub(crate) fn rel_path(&self, uri: &Uri) -> String {
        let p = uri
            .to_file_path()
            .map(|p| p.into_owned())
            .unwrap_or_else(|| PathBuf::from(uri.as_str()));
        match self.root.get().and_then(|r| p.strip_prefix(r).ok()) {
            Some(rel) => rel.to_string_lossy().replace('\\', "/"),
            None => p.to_string_lossy().replace('\\', "/"),
        }
    }
}
