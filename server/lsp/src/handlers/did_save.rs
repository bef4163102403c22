//! `textDocument/didSave`: updates the index in the background.

use crate::background::indexer;
use crate::session::Session;
use std::sync::Arc;
use tower_lsp_server::ls_types::DidSaveTextDocumentParams;

pub(crate) async fn handle(s: &Arc<Session>, _: DidSaveTextDocumentParams) {
    let s = s.clone();
    tokio::spawn(async move { indexer::reindex(&s, "patois: updating the index").await });
}
