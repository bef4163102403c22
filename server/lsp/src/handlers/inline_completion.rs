//! `textDocument/inlineCompletion` (LSP 3.18): the ghost text at the cursor.

use crate::errors::{blocking, from_engine};
use crate::session::Session;
use crate::text::offset;
use patois_engine::{StopReason, Ticket};
use tower_lsp_server::jsonrpc::{Error, Result};
use tower_lsp_server::ls_types::*;

/// Cancels the ticket when the request future is dropped (`$/cancelRequest`).
struct CancelOnDrop(Ticket);
impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// The completion text at a position, or `None` when there is nothing to offer (no model,
/// a document patois skips, an empty completion).
pub(crate) async fn complete_at(s: &Session, uri: &Uri, pos: Position) -> Result<Option<String>> {
    let engine = s.engine()?;
    let doc = s.snapshot(uri)?;
    let cursor = offset(&doc.text, pos, s.encoding());
    let ticket = engine.begin(&doc.rel);
    let guard = CancelOnDrop(ticket.clone());
    let e = engine.clone();
    let r = blocking(move || e.complete(&doc.rel, &doc.text, cursor, &ticket)).await?;
    drop(guard);
    // The inference server went away or came back: say so once, and in the status.
    if let Some(note) = engine.remote_note() {
        if s.note_once(note).await {
            s.send_status().await;
        }
    }
    match r {
        Ok(c) if c.stop == StopReason::Cancelled => Err(Error::request_cancelled()),
        Ok(c) if c.text.is_empty() => Ok(None),
        Ok(c) => Ok(Some(c.text)),
        Err(e) if e.is_quiet() => {
            if s.note_once(e.to_string()).await {
                s.send_status().await;
            }
            Ok(None)
        }
        Err(e) => Err(from_engine(&e)),
    }
}

pub(crate) async fn handle(
    s: &Session,
    p: InlineCompletionParams,
) -> Result<Option<InlineCompletionResponse>> {
    let pos = p.text_document_position;
    let items = match complete_at(s, &pos.text_document.uri, pos.position).await? {
        Some(text) => vec![InlineCompletionItem {
            insert_text: text,
            filter_text: None,
            range: Some(Range::new(pos.position, pos.position)),
            command: None,
            insert_text_format: None,
        }],
        None => vec![],
    };
    Ok(Some(InlineCompletionResponse::List(InlineCompletionList { items })))
}
