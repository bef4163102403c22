//! `textDocument/codeAction`: offers "Explain with patois" for the selection.

use crate::session::Session;
use serde_json::json;
use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::*;

pub(crate) async fn handle(_: &Session, p: CodeActionParams) -> Result<Option<CodeActionResponse>> {
    let action = CodeAction {
        title: "Explain with patois".into(),
        kind: Some(CodeActionKind::new("source.patois.explain")),
        data: Some(json!({ "uri": p.text_document.uri, "range": p.range })),
        ..Default::default()
    };
    Ok(Some(vec![CodeActionOrCommand::CodeAction(action)]))
}
