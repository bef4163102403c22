//! `textDocument/completion`: the same completion as a menu item, for clients without
//! inline completion.

use super::inline_completion::complete_at;
use crate::session::Session;
use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::*;

pub(crate) async fn handle(s: &Session, p: CompletionParams) -> Result<Option<CompletionResponse>> {
    let pos = p.text_document_position;
    let Some(c) = complete_at(s, &pos.text_document.uri, pos.position).await? else {
        return Ok(None);
    };
    let text = c.text;
    let first = text.lines().next().unwrap_or("").trim().to_string();
    Ok(Some(CompletionResponse::Array(vec![CompletionItem {
        label: format!("patois: {first}"),
        kind: Some(CompletionItemKind::TEXT),
        insert_text: Some(text),
        detail: Some("patois completion".into()),
        ..Default::default()
    }])))
}
