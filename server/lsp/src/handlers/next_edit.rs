//! `patois/nextEdit`: the edits that follow the user's latest edit of a document (after a
//! rename, the old name's other uses), as ranges in the negotiated encoding. The code
//! action handler offers them too, for clients that show no next edits of their own.

use crate::convert;
use crate::errors::{blocking, from_engine};
use crate::ext::{NextEditItem, NextEditParams, NextEditResult};
use crate::session::Session;
use crate::text::position;
use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::{Range, Uri};

/// The next edits of the document at `uri`, each with its file's URI and range.
pub(crate) async fn found(s: &Session, uri: &Uri) -> Result<Vec<(Uri, NextEditItem)>> {
    let engine = s.engine()?;
    let doc = s.snapshot(uri)?;
    let e = engine.clone();
    let found = blocking(move || e.next_edits(&doc.rel)).await?.map_err(|e| from_engine(&e))?;
    let enc = s.encoding();
    let located = found.iter().filter_map(|x| {
        let uri = Uri::from_file_path(engine.root().join(&x.path))?;
        let line = x.line.saturating_sub(1);
        let at = |off: usize| {
            let mut p = position(&x.line_text, off, enc);
            p.line = line;
            p
        };
        let item = NextEditItem {
            uri: uri.as_str().to_string(),
            range: Range { start: at(x.start), end: at(x.end) },
            new_text: x.new_text.clone(),
            reason: x.reason.clone(),
            citation: convert::citation(&x.citation),
        };
        Some((uri, item))
    });
    Ok(located.collect())
}

pub(crate) async fn handle(s: &Session, p: NextEditParams) -> Result<NextEditResult> {
    let edits = found(s, &p.text_document.uri).await?;
    Ok(NextEditResult { edits: edits.into_iter().map(|(_, item)| item).collect() })
}
