//! `shutdown`: stops the file watcher and idle training.

use crate::session::Session;
use tower_lsp_server::jsonrpc::Result;

pub(crate) async fn handle(s: &Session) -> Result<()> {
    s.watcher.lock().unwrap_or_else(|p| p.into_inner()).take();
    s.idle_training.shutdown();
    Ok(())
}
