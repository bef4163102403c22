//! `workspace/didChangeWatchedFiles`: updates the index in the background.

use crate::session::Session;
use std::sync::Arc;
use tower_lsp_server::ls_types::DidChangeWatchedFilesParams;

pub(crate) async fn handle(s: &Arc<Session>, _: DidChangeWatchedFilesParams) {
    let s = s.clone();
    tokio::spawn(async move { s.reindex("patois: updating the index").await });
}
