//! `patois/cursor`: the cursor rests; the prompt a completion there would have is
//! prefilled in the background up to the cursor's line, paused by every request that needs
//! the model and ended by an edit above that line (see the engine's `completion/warm.rs`).

use crate::background::completion as background;
use crate::session::Session;
use crate::text::offset;
use patois_engine::Run;
use tower_lsp_server::ls_types::TextDocumentPositionParams;

pub(crate) async fn handle(s: &Session, p: TextDocumentPositionParams) {
    let (Ok(engine), Ok(doc)) = (s.engine(), s.snapshot(&p.text_document.uri)) else {
        return; // No workspace, or a document not opened: nothing to prepare.
    };
    let cursor = offset(&doc.text, p.position, s.encoding());
    background::run(&engine, &doc.rel, doc.text.clone(), cursor, Run::Warm);
}
