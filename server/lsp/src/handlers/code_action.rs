//! `textDocument/codeAction`: offers "Explain with patois" for the selection, and the
//! document's next edits (after a rename, "Rename the other uses of …") as one edit.

use crate::handlers::next_edit;
use crate::session::Session;
use serde_json::json;
use std::collections::HashMap;
use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::*;

pub(crate) async fn handle(s: &Session, p: CodeActionParams) -> Result<Option<CodeActionResponse>> {
    let explain = CodeAction {
        title: "Explain with patois".into(),
        kind: Some(CodeActionKind::new("source.patois.explain")),
        data: Some(json!({ "uri": p.text_document.uri, "range": p.range })),
        ..Default::default()
    };
    let mut actions = vec![CodeActionOrCommand::CodeAction(explain)];
    // A document the server does not hold, or no workspace: no next edits to offer.
    let edits = next_edit::found(s, &p.text_document.uri).await.unwrap_or_default();
    if let Some((_, first)) = edits.first() {
        let mut changes: HashMap<Uri, Vec<TextEdit>> = HashMap::new();
        for (uri, e) in &edits {
            let edit = TextEdit { range: e.range, new_text: e.new_text.clone() };
            changes.entry(uri.clone()).or_default().push(edit);
        }
        let title = format!("Apply {} next edits: {}", edits.len(), first.reason);
        actions.push(CodeActionOrCommand::CodeAction(CodeAction {
            title,
            kind: Some(CodeActionKind::REFACTOR_REWRITE),
            edit: Some(WorkspaceEdit { changes: Some(changes), ..Default::default() }),
            ..Default::default()
        }));
    }
    Ok(Some(actions))
}
