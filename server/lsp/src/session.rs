//! The server's state: the engine, the open documents as the client holds them, and what
//! was negotiated at initialization. Handlers take a [`DocSnapshot`] per request.

use crate::errors::invalid;
use crate::text::Encoding;
use dashmap::DashMap;
use patois_engine::Engine;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::{MessageType, Uri};
use tower_lsp_server::Client;

/// An open document: its text as the client holds it, shared with requests in flight.
pub(crate) struct Doc {
    pub text: Arc<String>,
    /// The path relative to the workspace root.
    pub rel: String,
}

/// A request's view of one document: later edits do not change it.
pub(crate) struct DocSnapshot {
    pub text: Arc<String>,
    pub rel: String,
}

pub struct Session {
    pub(crate) client: Client,
    pub(crate) engine: OnceLock<Arc<Engine>>,
    pub(crate) root: OnceLock<PathBuf>,
    pub(crate) docs: DashMap<Uri, Doc>,
    encoding: AtomicU8,
    pub(crate) client_watches: AtomicBool,
    pub(crate) indexing: AtomicBool,
    /// A re-index was asked for while one ran: run once more after it.
    pub(crate) reindex_again: AtomicBool,
    /// An update is scheduled (changes within 300 ms of it join it).
    pub(crate) reindex_pending: AtomicBool,
    /// Which file changes matter to the index; set when the workspace opens.
    pub(crate) change_filter: OnceLock<crate::indexing::ChangeFilter>,
    pub(crate) watcher: Mutex<Option<notify::RecommendedWatcher>>,
    /// The last "nothing to offer" note logged, so that it is logged once, not per keystroke.
    last_note: Mutex<Option<String>>,
    pub(crate) idle_training: Arc<crate::idle_training::IdleTrainer>,
}

impl Session {
    pub fn new(client: Client) -> Session {
        Session {
            client,
            engine: OnceLock::new(),
            root: OnceLock::new(),
            docs: DashMap::new(),
            encoding: AtomicU8::new(16),
            client_watches: AtomicBool::new(false),
            indexing: AtomicBool::new(false),
            reindex_again: AtomicBool::new(false),
            reindex_pending: AtomicBool::new(false),
            change_filter: OnceLock::new(),
            watcher: Mutex::new(None),
            last_note: Mutex::new(None),
            idle_training: Arc::new(crate::idle_training::IdleTrainer::new()),
        }
    }

    pub(crate) fn encoding(&self) -> Encoding {
        if self.encoding.load(Ordering::Relaxed) == 8 {
            Encoding::Utf8
        } else {
            Encoding::Utf16
        }
    }

    pub(crate) fn set_encoding(&self, enc: Encoding) {
        self.encoding.store(if enc == Encoding::Utf8 { 8 } else { 16 }, Ordering::Relaxed);
    }

    pub(crate) fn engine(&self) -> Result<Arc<Engine>> {
        self.engine.get().cloned().ok_or_else(|| {
            invalid("patois has no workspace folder open; open a folder inside a repository")
        })
    }

    /// The document as the client holds it now, or an error saying to open it first.
    pub(crate) fn snapshot(&self, uri: &Uri) -> Result<DocSnapshot> {
        match self.docs.get(uri) {
            Some(d) => Ok(DocSnapshot { text: d.text.clone(), rel: d.rel.clone() }),
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

    /// Logs a note (why there is nothing to offer, where completions come from), once
    /// per distinct note; true when it was new.
    pub(crate) async fn note_once(&self, note: String) -> bool {
        {
            let mut last = self.last_note.lock().unwrap_or_else(|p| p.into_inner());
            if last.as_deref() == Some(note.as_str()) {
                return false;
            }
            *last = Some(note.clone());
        }
        self.client.log_message(MessageType::INFO, format!("patois: {note}")).await;
        true
    }
}
