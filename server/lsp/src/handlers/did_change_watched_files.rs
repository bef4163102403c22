//! `workspace/didChangeWatchedFiles`: updates the index in the background when a change
//! can matter to it (the client also reports patois's own index writes and ignored files).

use crate::background::indexer;
use crate::session::Session;
use std::sync::Arc;
use tower_lsp_server::ls_types::DidChangeWatchedFilesParams;

pub(crate) async fn handle(s: &Arc<Session>, p: DidChangeWatchedFilesParams) {
    let paths: Vec<_> =
        p.changes.iter().filter_map(|c| c.uri.to_file_path().map(|p| p.into_owned())).collect();
    if s.indexer.changes_matter(paths.iter().map(|p| p.as_path())) {
        indexer::reindex_soon(s);
    }
}
