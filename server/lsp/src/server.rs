//! The `LanguageServer` implementation: every message, standard or patois's own, goes
//! through [`Server::dispatch`], the one place that decides what a message means for the
//! work in the background before its handler runs.

use crate::ext::{AskParams, AskResult, ContextResult, NextEditParams, NextEditResult};
use crate::ext::{ExplainParams, ExplainResult, MalformedParams, StatusParams, StatusReport};
use crate::handlers::*;
use crate::session::Session;
use std::future::Future;
use std::sync::Arc;
use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::*;
use tower_lsp_server::LanguageServer;

/// The server; an `Arc` so that background tasks can hold the session.
pub struct Server(pub Arc<Session>);

/// Who a message comes from, as far as background work is concerned.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// The user at work (typing, opening, asking): idle training stops at once, before the
    /// handler runs, so that it does not compete with the answer.
    User,
    /// The editor on its own (initialization, settings, file events, status polls, a
    /// resting cursor) or a frame that never was a message: not a sign of the user, so
    /// idle training goes on.
    Editor,
}

impl Server {
    /// Runs `handler` on the session after what `origin` asks of the background work.
    async fn dispatch<F: Future>(
        &self,
        origin: Origin,
        handler: impl FnOnce(Arc<Session>) -> F,
    ) -> F::Output {
        if origin == Origin::User {
            self.0.idle_training.touch();
        }
        handler(self.0.clone()).await
    }
}

use Origin::{Editor, User};

impl LanguageServer for Server {
    async fn initialize(&self, p: InitializeParams) -> Result<InitializeResult> {
        self.dispatch(Editor, |s| async move { initialize::handle(&s, p).await }).await
    }
    async fn initialized(&self, p: InitializedParams) {
        self.dispatch(Editor, |s| async move { initialized::handle(&s, p).await }).await
    }
    async fn shutdown(&self) -> Result<()> {
        self.dispatch(Editor, |s| async move { shutdown::handle(&s).await }).await
    }
    async fn did_open(&self, p: DidOpenTextDocumentParams) {
        self.dispatch(User, |s| async move { did_open::handle(&s, p).await }).await
    }
    async fn did_change(&self, p: DidChangeTextDocumentParams) {
        self.dispatch(User, |s| async move { did_change::handle(&s, p).await }).await
    }
    async fn did_close(&self, p: DidCloseTextDocumentParams) {
        self.dispatch(User, |s| async move { did_close::handle(&s, p).await }).await
    }
    async fn did_save(&self, p: DidSaveTextDocumentParams) {
        self.dispatch(User, |s| async move { did_save::handle(&s, p).await }).await
    }
    async fn did_change_watched_files(&self, p: DidChangeWatchedFilesParams) {
        self.dispatch(Editor, |s| async move { did_change_watched_files::handle(&s, p).await })
            .await
    }
    async fn did_change_configuration(&self, p: DidChangeConfigurationParams) {
        self.dispatch(Editor, |s| async move { did_change_configuration::handle(&s, p).await })
            .await
    }
    async fn completion(&self, p: CompletionParams) -> Result<Option<CompletionResponse>> {
        self.dispatch(User, |s| async move { completion::handle(&s, p).await }).await
    }
    async fn code_action(&self, p: CodeActionParams) -> Result<Option<CodeActionResponse>> {
        self.dispatch(User, |s| async move { code_action::handle(&s, p).await }).await
    }
    async fn code_action_resolve(&self, a: CodeAction) -> Result<CodeAction> {
        self.dispatch(User, |s| async move { code_action_resolve::handle(&s, a).await }).await
    }
    async fn execute_command(&self, p: ExecuteCommandParams) -> Result<Option<LSPAny>> {
        self.dispatch(User, |s| async move { execute_command::handle(&s, p).await }).await
    }
}

/// Requests and notifications outside the `LanguageServer` trait (see [`crate::ext`]).
impl Server {
    pub(crate) async fn inline_completion(
        &self,
        p: InlineCompletionParams,
    ) -> Result<Option<InlineCompletionResponse>> {
        self.dispatch(User, |s| async move { inline_completion::handle(&s, p).await }).await
    }
    pub(crate) async fn explain(&self, p: ExplainParams) -> Result<ExplainResult> {
        self.dispatch(User, |s| async move { explain::handle(&s, p).await }).await
    }
    pub(crate) async fn ask(&self, p: AskParams) -> Result<AskResult> {
        self.dispatch(User, |s| async move { ask::handle(&s, p).await }).await
    }
    pub(crate) async fn next_edit(&self, p: NextEditParams) -> Result<NextEditResult> {
        self.dispatch(User, |s| async move { next_edit::handle(&s, p).await }).await
    }
    pub(crate) async fn context(&self, p: TextDocumentPositionParams) -> Result<ContextResult> {
        self.dispatch(User, |s| async move { context::handle(&s, p).await }).await
    }
    pub(crate) async fn status(&self, p: StatusParams) -> Result<StatusReport> {
        self.dispatch(Editor, |s| async move { status::handle(&s, p).await }).await
    }
    pub(crate) async fn document_text(&self, p: TextDocumentIdentifier) -> Result<String> {
        self.dispatch(User, |s| async move { document_text::handle(&s, p).await }).await
    }
    pub(crate) async fn cursor(&self, p: TextDocumentPositionParams) {
        self.dispatch(Editor, |s| async move { cursor::handle(&s, p).await }).await
    }
    pub(crate) async fn malformed_request(&self, p: MalformedParams) -> Result<()> {
        self.dispatch(Editor, |s| async move { malformed::request(&s, p).await }).await
    }
    pub(crate) async fn malformed_notification(&self, p: MalformedParams) {
        self.dispatch(Editor, |s| async move { malformed::notification(&s, p).await }).await
    }
}
