//! `textDocument/inlineCompletion` (LSP 3.18): the ghost text at the cursor, or the next
//! edit on the cursor's line as an item replacing its range.

use crate::background::completion::{self as background, CancelOnDrop};
use crate::errors::{blocking, from_engine};
use crate::ext::ACCEPTED_COMMAND;
use crate::handlers::next_edit;
use crate::handlers::status::send_status;
use crate::session::Session;
use crate::text::offset;
use patois_engine::{CompletionResult, Run, StopReason};
use std::sync::Arc;
use tower_lsp_server::jsonrpc::{Error, Result};
use tower_lsp_server::ls_types::*;

/// The completion at a position, or `None` when there is nothing to offer (no model, a
/// document patois skips, an empty completion). A request that a newer request or an
/// edit of the document made stale is answered RequestCancelled at once, while the
/// model stops at its next check.
pub(crate) async fn complete_at(
    s: &Session,
    uri: &Uri,
    pos: Position,
) -> Result<Option<CompletionResult>> {
    let engine = s.engine()?;
    let doc = s.snapshot(uri)?;
    let cursor = offset(&doc.text, pos, s.encoding());
    let ticket = engine.begin(&doc.rel);
    let guard = CancelOnDrop(ticket.clone());
    let e = engine.clone();
    let (rel, text) = (doc.rel.clone(), doc.text.clone());
    let work = blocking(move || e.complete(&rel, &text, cursor, &ticket));
    let Some(r) = background::unless_stale(work, &guard.0).await else {
        return Err(Error::request_cancelled());
    };
    let r = r?;
    drop(guard);
    // The inference server went away or came back: say so once, and in the status.
    if let Some(note) = engine.remote_note() {
        if note_once(s, note).await {
            send_status(s).await;
        }
    }
    match r {
        Ok(c) if c.stop == StopReason::Cancelled => Err(Error::request_cancelled()),
        Ok(c) => {
            if c.shrunk {
                // The budget cut the prompt: prefill the full one while the model is free
                // (also after an answer from the cache, which left it free); typing on
                // this line only pauses that warm-up.
                background::run(&engine, &doc.rel, doc.text.clone(), cursor, Run::Warm);
            }
            Ok((!c.text.is_empty()).then_some(c))
        }
        Err(e) if e.is_quiet() => {
            if note_once(s, e.to_string()).await {
                send_status(s).await;
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
    if let Some(item) = next_edit_on_line(s, &pos.text_document.uri, pos.position).await {
        return Ok(Some(InlineCompletionResponse::List(InlineCompletionList {
            items: vec![item],
        })));
    }
    let items = match complete_at(s, &pos.text_document.uri, pos.position).await? {
        Some(c) => vec![InlineCompletionItem {
            filter_text: None,
            range: Some(Range::new(pos.position, pos.position)),
            command: Some(accepted_command(&pos.text_document.uri, pos.position, &c.text)),
            insert_text: c.text,
            insert_text_format: None,
        }],
        None => vec![],
    };
    Ok(Some(InlineCompletionResponse::List(InlineCompletionList { items })))
}

/// A next edit on the cursor's line (after a rename, the old name there) as an item that
/// replaces its range: exact, and without the model.
async fn next_edit_on_line(s: &Session, uri: &Uri, at: Position) -> Option<InlineCompletionItem> {
    let found = next_edit::found(s, uri).await.ok()?;
    let (_, e) = found.into_iter().find(|(u, e)| u == uri && e.range.start.line == at.line)?;
    Some(InlineCompletionItem {
        insert_text: e.new_text,
        filter_text: None,
        range: Some(e.range),
        command: None,
        insert_text_format: None,
    })
}

/// The command the client runs when the user accepts `text` inserted at `pos`.
fn accepted_command(uri: &Uri, pos: Position, text: &str) -> Command {
    let args = [serde_json::json!(uri), serde_json::json!(pos), serde_json::json!(text)];
    Command {
        title: "patois: prepare the next completion".into(),
        command: ACCEPTED_COMMAND.into(),
        arguments: Some(args.into()),
    }
}

/// `patois.accepted`: the user took `inserted` at `pos` in `uri`. The completion after it
/// is computed in the background (on the document with the insertion, whether or not the
/// client's edit has arrived yet) and waits in the engine's cache.
pub(crate) fn accepted(s: &Session, uri: &Uri, pos: Position, inserted: &str) -> Result<()> {
    let engine = s.engine()?;
    let doc = s.snapshot(uri)?;
    let at = offset(&doc.text, pos, s.encoding());
    let text = if doc.text[at..].starts_with(inserted) {
        doc.text.clone()
    } else {
        Arc::new(format!("{}{inserted}{}", &doc.text[..at], &doc.text[at..]))
    };
    background::run(&engine, &doc.rel, text, at + inserted.len(), Run::Ahead);
    Ok(())
}

/// Logs a note (why there is nothing to offer, where completions come from) once per
/// distinct note; true when it was new.
async fn note_once(s: &Session, note: String) -> bool {
    {
        let mut last = crate::lock(&s.last_note);
        if last.as_deref() == Some(note.as_str()) {
            return false;
        }
        *last = Some(note.clone());
    }
    s.client.log_message(MessageType::INFO, format!("patois: {note}")).await;
    true
}
