//! `patois/context`: the items the model would read at a position, with citations.

use crate::convert;
use crate::errors::{blocking, from_engine};
use crate::ext::ContextResult;
use crate::session::Session;
use crate::text::offset;
use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::TextDocumentPositionParams;

pub(crate) async fn handle(s: &Session, p: TextDocumentPositionParams) -> Result<ContextResult> {
    let engine = s.engine()?;
    let doc = s.snapshot(&p.text_document.uri)?;
    let cursor = offset(&doc.text, p.position, s.encoding());
    let budget = engine.settings().budget;
    let r = blocking(move || engine.context(&doc.rel, &doc.text, cursor, budget))
        .await?
        .map_err(|e| from_engine(&e))?;
    Ok(ContextResult { items: r.items.iter().map(convert::context_item).collect() })
}
