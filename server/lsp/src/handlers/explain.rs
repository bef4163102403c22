//! `patois/explain`: definition, callers, tests and history of a range, with citations.

use crate::convert;
use crate::errors::{blocking, from_engine, invalid};
use crate::ext::{ExplainParams, ExplainResult};
use crate::session::Session;
use std::sync::Arc;
use tower_lsp_server::jsonrpc::Result;

pub(crate) async fn handle(s: &Session, p: ExplainParams) -> Result<ExplainResult> {
    let engine = s.engine()?;
    let uri = &p.text_document.uri;
    let (rel, text) = match s.snapshot(uri) {
        Ok(doc) => (doc.rel, doc.text),
        // Not open: explain the file as saved.
        Err(_) => {
            let path = uri
                .to_file_path()
                .ok_or_else(|| invalid(format!("{} is not a file URI", uri.as_str())))?
                .into_owned();
            let text = std::fs::read_to_string(&path)
                .map_err(|e| invalid(format!("{}: {e}", path.display())))?;
            (s.rel_path(uri), Arc::new(text))
        }
    };
    let start = p.range.start.line.saturating_add(1);
    let end = p.range.end.line.max(p.range.start.line).saturating_add(1);
    let summary = p.summary.unwrap_or(true);
    let x = blocking(move || patois_engine::explain(&engine, &rel, &text, start, end, summary))
        .await?
        .map_err(|e| from_engine(&e))?;
    Ok(convert::explanation(x))
}
