//! `textDocument/didChange`: applies the client's edits (incremental or full) in order.

use crate::session::Session;
use crate::text::apply;
use std::sync::Arc;
use tower_lsp_server::ls_types::DidChangeTextDocumentParams;

pub(crate) async fn handle(s: &Session, p: DidChangeTextDocumentParams) {
    let enc = s.encoding();
    let (rel, text, line) = {
        let Some(mut doc) = s.docs.get_mut(&p.text_document.uri) else {
            return; // Not opened: nothing to keep in step with.
        };
        // Requests in flight keep the text they started with; the edit gets its own copy.
        let text = Arc::make_mut(&mut doc.text);
        let mut line = 1;
        for change in &p.content_changes {
            apply(text, change, enc);
            line = change.range.map_or(1, |r| r.start.line.saturating_add(1));
        }
        (doc.rel.clone(), doc.text.clone(), line)
    };
    if let Ok(e) = s.engine() {
        e.document_changed(&rel, text, line);
    }
}
