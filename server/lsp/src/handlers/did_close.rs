//! `textDocument/didClose`: forgets the document (the file on disk is what the index has).

use crate::session::Session;
use tower_lsp_server::ls_types::DidCloseTextDocumentParams;

pub(crate) async fn handle(s: &Session, p: DidCloseTextDocumentParams) {
    if let Some((_, d)) = s.docs.remove(&p.text_document.uri) {
        if let Ok(e) = s.engine() {
            e.document_closed(&d.rel);
        }
    }
}
