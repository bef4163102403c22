//! `codeAction/resolve`: attaches the explain command to the action.

use crate::ext::EXPLAIN_COMMAND;
use crate::session::Session;
use serde_json::Value;
use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::*;

pub(crate) async fn handle(_: &Session, mut a: CodeAction) -> Result<CodeAction> {
    let data = a.data.clone().unwrap_or(Value::Null);
    a.command = Some(Command {
        title: "Explain with patois".into(),
        command: EXPLAIN_COMMAND.into(),
        arguments: Some(vec![data["uri"].clone(), data["range"].clone()]),
    });
    Ok(a)
}
