//! The LSP layer: the only crate that knows LSP. A thin adapter over
//! [`patois_engine::Engine`]: one handler per request in [`handlers`], patois's own
//! requests typed in [`ext`], engine errors mapped at the edge, long work on tokio's
//! blocking pool, and every frame checked before tower-lsp reads it ([`frames`]).

mod background;
mod convert;
mod errors;
pub mod ext;
pub mod frames;
mod handlers;
mod partial;
mod server;
mod session;
mod settings;
mod text;

pub use server::Server;
pub use session::Session;
pub use settings::{merge_settings, settings_reference};
pub use text::{apply, offset, position, Encoding};

use std::sync::{Arc, Mutex, MutexGuard};
use tower_lsp_server::ls_types::notification::Notification;
use tower_lsp_server::ls_types::request::Request;
use tower_lsp_server::LspService;

/// Messages handled at once. Stale completions answer at once, so few run long; tower-lsp
/// reads no further message while this many are in flight (its default is 4).
const CONCURRENCY: usize = 64;

/// Serves LSP on stdin/stdout until the client exits.
pub async fn serve_stdio() {
    let (proxy_in, proxy_out) = tokio::io::duplex(1 << 16);
    tokio::spawn(frames::forward(tokio::io::stdin(), proxy_in));
    let (service, socket) = LspService::build(|client| Server(Arc::new(Session::new(client))))
        .custom_method(ext::MALFORMED_REQUEST, Server::malformed_request)
        .custom_method(ext::MALFORMED_NOTIFICATION, Server::malformed_notification)
        .custom_method("textDocument/inlineCompletion", Server::inline_completion)
        .custom_method(ext::Explain::METHOD, Server::explain)
        .custom_method(ext::Ask::METHOD, Server::ask)
        .custom_method(ext::NextEdits::METHOD, Server::next_edit)
        .custom_method(ext::Status::METHOD, Server::status)
        .custom_method(ext::Context::METHOD, Server::context)
        .custom_method(ext::DocumentText::METHOD, Server::document_text)
        .custom_method(ext::Cursor::METHOD, Server::cursor)
        .finish();
    tower_lsp_server::Server::new(proxy_out, tokio::io::stdout(), socket)
        .concurrency_level(CONCURRENCY)
        .serve(service)
        .await;
}

/// A lock that a panic elsewhere does not poison for the rest of the session.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
