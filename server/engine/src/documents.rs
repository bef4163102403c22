//! The open documents, as the editor has them (unsaved text included), and the edits
//! made to them.

use crate::{edits, lock, Engine, Error, Result};
use patois_retrieve::RecentDoc;
use std::path::Path;
use std::sync::Arc;

pub(crate) struct DocState {
    pub(crate) text: Arc<String>,
    pub(crate) edit_line: u32,
    pub(crate) seq: u64,
}

impl Engine {
    /// Records an open or changed document (its unsaved text is what completions read).
    /// Requests in flight for `path`, and background work, become stale.
    pub fn document_changed(&self, path: &str, text: Arc<String>, edit_line: u32) {
        let before = lock(&self.docs).get(path).map(|d| d.text.clone());
        // The diff is taken outside the documents' lock: the model's cancellation check
        // reads them while it runs.
        if let Some(before) = before {
            lock(&self.edits).record(path, &before, &text, edit_line);
        }
        let seq = self.tickets.next_seq();
        lock(&self.docs).insert(path.to_string(), DocState { text, edit_line, seq });
        // After the text is in place: a generation that sees the new number reads it.
        self.tickets.bump(path);
    }

    /// The user's recent edits as hunks, newest first (those undone since left out).
    pub(crate) fn recent_hunks(&self) -> Vec<patois_retrieve::EditHunk> {
        let docs = lock(&self.docs);
        lock(&self.edits).hunks(|p| docs.get(p).map(|d| d.text.clone()))
    }

    /// Forgets the recorded edits (benchmarks compare with and without them).
    pub fn forget_edits(&self) {
        *lock(&self.edits) = edits::EditLog::default();
    }

    pub fn document_closed(&self, path: &str) {
        lock(&self.docs).remove(path);
    }

    /// The open documents other than `path`, most recently edited first.
    pub(crate) fn recent(&self, path: &str) -> Vec<RecentDoc> {
        let docs = lock(&self.docs);
        let mut v: Vec<(&String, &DocState)> =
            docs.iter().filter(|(p, _)| p.as_str() != path).collect();
        v.sort_by_key(|d| std::cmp::Reverse(d.1.seq));
        v.into_iter()
            .map(|(p, d)| RecentDoc {
                path: p.clone(),
                text: d.text.clone(),
                edit_line: d.edit_line,
            })
            .collect()
    }

    pub(crate) fn check_document(&self, path: &str, text: &str) -> Result<()> {
        let s = self.settings();
        if text.len() > s.max_document_bytes {
            return Err(Error::DocumentTooLarge {
                path: path.to_string(),
                bytes: text.len(),
                limit: s.max_document_bytes,
            });
        }
        if let Some(lang) = patois_syntax::language_for_path(Path::new(path)) {
            if s.disabled_languages.iter().any(|l| l == lang.name) {
                return Err(Error::LanguageDisabled { language: lang.name.to_string() });
            }
        }
        Ok(())
    }
}
