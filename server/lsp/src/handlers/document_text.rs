//! `patois/documentText`: the text the server holds for an open document.

use crate::session::Session;
use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::TextDocumentIdentifier;

pub(crate) async fn handle(s: &Session, p: TextDocumentIdentifier) -> Result<String> {
    Ok(s.snapshot(&p.uri)?.text.as_ref().clone())
}
