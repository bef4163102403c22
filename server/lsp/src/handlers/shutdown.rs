//! `shutdown`: stops the file watcher and idle training.

use crate::session::Session;
use tower_lsp_server::jsonrpc::Result;

pub(crate) async fn handle(s: &Session) -> Result<()> {
    s.indexer.stop_watching();
    s.idle_training.shutdown();
    Ok(())
}
