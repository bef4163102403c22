//! `textDocument/didOpen`: the document's text, as the client holds it, is what requests read.

use crate::session::{Doc, Session};
use std::sync::Arc;
use tower_lsp_server::ls_types::DidOpenTextDocumentParams;

pub(crate) async fn handle(s: &Session, p: DidOpenTextDocumentParams) {
    let rel = s.rel_path(&p.text_document.uri);
    let text = Arc::new(p.text_document.text);
    if let Ok(e) = s.engine() {
        e.document_changed(&rel, text.clone(), 1);
    }
    s.docs.insert(p.text_document.uri, Doc { text, rel });
}
