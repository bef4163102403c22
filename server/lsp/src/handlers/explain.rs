//! `patois/explain`: definition, callers, tests and history of a range, with citations,
//! and the model's summary of them; the summary so far goes out as `$/progress` while the
//! model writes, and `$/cancelRequest` stops the model.

use crate::background::completion::CancelOnDrop;
use crate::convert;
use crate::errors::{blocking, from_engine, invalid};
use crate::ext::{ExplainParams, ExplainResult};
use crate::partial;
use crate::session::Session;
use patois_engine::{Follow, Ticket};
use std::sync::{Arc, Mutex};
use tower_lsp_server::jsonrpc::Result;

pub(crate) async fn handle(s: &Session, p: ExplainParams) -> Result<ExplainResult> {
    let engine = s.engine()?;
    let uri = &p.text_document.uri;
    // An open document as the editor holds it; else the file as saved.
    let (rel, open_text) = match s.snapshot(uri) {
        Ok(doc) => (doc.rel, Some(doc.text)),
        Err(_) => (s.rel_path(uri), None),
    };
    let path = uri.to_file_path().map(|p| p.into_owned());
    let start = p.range.start.line.saturating_add(1);
    let end = p.range.end.line.max(p.range.start.line).saturating_add(1);
    let summarize = p.summary.unwrap_or(true);
    let uri_text = uri.as_str().to_string();
    let written = Arc::new(Mutex::new(String::new()));
    // `$/cancelRequest` drops this future: the guard then stops the model.
    let guard = CancelOnDrop(Ticket::detached());
    let (w, ticket) = (written.clone(), guard.0.clone());
    let work = blocking(move || {
        let text = match (open_text, path) {
            (Some(text), _) => text,
            (None, Some(path)) => Arc::new(
                std::fs::read_to_string(&path)
                    .map_err(|e| invalid(format!("{}: {e}", path.display())))?,
            ),
            (None, None) => return Err(invalid(format!("{uri_text} is not a file URI"))),
        };
        let follow = Follow { written: Some(w), cancelled: &|| ticket.is_cancelled() };
        patois_engine::explain(&engine, &rel, &text, start, end, summarize.then_some(follow))
            .map_err(|e| from_engine(&e))
    });
    let x = partial::following(s, p.partial_result_token, &written, work).await??;
    drop(guard);
    Ok(convert::explanation(x))
}
