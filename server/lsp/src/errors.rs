//! Errors at the edge: engine errors become JSON-RPC errors here, chosen by their kind.

use serde_json::json;
use tower_lsp_server::jsonrpc::{Error, ErrorCode, Result};

pub(crate) fn internal(e: impl std::fmt::Display) -> Error {
    Error { code: ErrorCode::InternalError, message: e.to_string().into(), data: None }
}

pub(crate) fn invalid(msg: impl Into<String>) -> Error {
    Error { code: ErrorCode::InvalidParams, message: msg.into().into(), data: None }
}

/// The JSON-RPC error for an engine error; `data.kind` names the variant for editors.
pub(crate) fn from_engine(e: &patois_engine::Error) -> Error {
    use patois_engine::Error as E;
    let (code, kind) = match e {
        E::NoModel { .. } => (ErrorCode::InvalidRequest, "noModel"),
        E::Model { .. } => (ErrorCode::InternalError, "model"),
        E::DocumentTooLarge { .. } => (ErrorCode::InvalidParams, "documentTooLarge"),
        E::LanguageDisabled { .. } => (ErrorCode::InvalidRequest, "languageDisabled"),
        E::Settings { .. } => (ErrorCode::InvalidParams, "settings"),
        E::Index(_) => (ErrorCode::InternalError, "index"),
        E::Retrieval(_) => (ErrorCode::InternalError, "retrieval"),
        E::Generation(_) => (ErrorCode::InternalError, "generation"),
        E::Remote(_) => (ErrorCode::InternalError, "remote"),
    };
    Error { code, message: e.to_string().into(), data: Some(json!({ "kind": kind })) }
}

/// Runs blocking work off the async workers. The outer error is a panic in that work
/// (a bug, reported as an internal error); the inner one is the work's own.
pub(crate) async fn blocking<T: Send + 'static, E: Send + 'static>(
    f: impl FnOnce() -> std::result::Result<T, E> + Send + 'static,
) -> Result<std::result::Result<T, E>> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| internal(format!("patois hit an internal error (please report it): {e}")))
}
