//! `workspace/didChangeConfiguration`: new editor settings; a new model is loaded now.

use crate::errors::blocking;
use crate::handlers::status::send_status;
use crate::session::Session;
use crate::settings::merge_settings;
use tower_lsp_server::ls_types::{DidChangeConfigurationParams, MessageType};

pub(crate) async fn handle(s: &Session, p: DidChangeConfigurationParams) {
    let Ok(e) = s.engine() else { return };
    let settings = merge_settings(&e.settings(), &p.settings);
    let problem = match blocking(move || e.set_settings(settings)).await {
        Ok(Ok(())) => None,
        Ok(Err(err)) => Some(err.to_string()),
        Err(err) => Some(err.message.to_string()),
    };
    if let Some(problem) = problem {
        s.client.show_message(MessageType::WARNING, format!("patois: {problem}")).await;
    }
    send_status(s).await;
}
