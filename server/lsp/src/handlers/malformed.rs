//! `patois/malformed`: stands for a message the frame reader could not pass on. As a
//! request (the client's id was readable) it is answered with the error; as a
//! notification it is logged.

use crate::ext::MalformedParams;
use crate::session::Session;
use tower_lsp_server::jsonrpc::{Error, ErrorCode, Result};
use tower_lsp_server::ls_types::MessageType;

pub(crate) async fn request(_: &Session, p: MalformedParams) -> Result<()> {
    Err(Error { code: ErrorCode::from(p.code), message: p.error.into(), data: None })
}

pub(crate) async fn notification(s: &Session, p: MalformedParams) {
    let text = format!("patois: ignored a message from the editor: {}", p.error);
    s.client.log_message(MessageType::WARNING, text).await;
}
