//! `workspace/executeCommand`: `patois.explain` (for clients without the custom request:
//! the explanation is written under the index folder and shown), `patois.reindex` and
//! `patois.accepted` (an inline completion was accepted).

use crate::background::indexer;
use crate::errors::invalid;
use crate::ext::{ExplainParams, ACCEPTED_COMMAND, EXPLAIN_COMMAND, REINDEX_COMMAND};
use crate::session::Session;
use serde_json::Value;
use std::sync::Arc;
use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::*;

pub(crate) async fn handle(s: &Arc<Session>, p: ExecuteCommandParams) -> Result<Option<LSPAny>> {
    match p.command.as_str() {
        EXPLAIN_COMMAND => explain(s, &p.arguments).await,
        REINDEX_COMMAND => {
            let s = s.clone();
            tokio::spawn(async move { indexer::reindex(&s, "patois: re-indexing").await });
            Ok(None)
        }
        ACCEPTED_COMMAND => accepted(s, &p.arguments).map(|()| None),
        other => Err(invalid(format!(
            "unknown command {other}; patois provides {EXPLAIN_COMMAND}, {REINDEX_COMMAND} \
             and {ACCEPTED_COMMAND}"
        ))),
    }
}

fn accepted(s: &Session, args: &[Value]) -> Result<()> {
    let arg = |i: usize| args.get(i).cloned().unwrap_or_default();
    let uri: Uri = serde_json::from_value(arg(0))
        .map_err(|e| invalid(format!("argument 1 must be a document URI: {e}")))?;
    let pos: Position = serde_json::from_value(arg(1))
        .map_err(|e| invalid(format!("argument 2 must be a position: {e}")))?;
    let Value::String(inserted) = arg(2) else {
        return Err(invalid("argument 3 must be the accepted text"));
    };
    super::inline_completion::accepted(s, &uri, pos, &inserted)
}

async fn explain(s: &Session, args: &[Value]) -> Result<Option<LSPAny>> {
    let arg = |i: usize| args.get(i).cloned().unwrap_or_default();
    let uri: Uri = serde_json::from_value(arg(0))
        .map_err(|e| invalid(format!("argument 1 must be a document URI: {e}")))?;
    let range: Range = serde_json::from_value(arg(1))
        .map_err(|e| invalid(format!("argument 2 must be a range: {e}")))?;
    let text_document = TextDocumentIdentifier { uri };
    let p = ExplainParams { text_document, range, summary: Some(true), partial_result_token: None };
    let x = super::explain::handle(s, p).await?;
    // Generic clients: write the markdown under the index folder and show it.
    if let Ok(e) = s.engine() {
        let dir = e.index().dir().join("explain");
        let name = format!("{}.md", x.symbol.as_deref().unwrap_or("selection"));
        let file = dir.join(name);
        let written =
            std::fs::create_dir_all(&dir).is_ok() && std::fs::write(&file, &x.markdown).is_ok();
        if let Some(uri) = Uri::from_file_path(&file).filter(|_| written) {
            let show = ShowDocumentParams {
                uri,
                external: Some(false),
                take_focus: Some(true),
                selection: None,
            };
            let _ = s.client.show_document(show).await;
        }
    }
    serde_json::to_value(x).map(Some).map_err(crate::errors::internal)
}
