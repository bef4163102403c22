//! The `LanguageServer` implementation: each method hands its parameters to its handler.

use crate::ext::ContextResult;
use crate::ext::{ExplainParams, ExplainResult, MalformedParams, StatusParams, StatusReport};
use crate::handlers::*;
use crate::session::Session;
use std::sync::Arc;
use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::*;
use tower_lsp_server::LanguageServer;

/// The server; an `Arc` so that background tasks can hold the session.
pub struct Server(pub Arc<Session>);

impl LanguageServer for Server {
    async fn initialize(&self, p: InitializeParams) -> Result<InitializeResult> {
        initialize::handle(&self.0, p).await
    }
    async fn initialized(&self, p: InitializedParams) {
        initialized::handle(&self.0, p).await
    }
    async fn shutdown(&self) -> Result<()> {
        shutdown::handle(&self.0).await
    }
    async fn did_open(&self, p: DidOpenTextDocumentParams) {
        self.0.idle_training.touch();
        did_open::handle(&self.0, p).await
    }
    async fn did_change(&self, p: DidChangeTextDocumentParams) {
        self.0.idle_training.touch();
        did_change::handle(&self.0, p).await
    }
    async fn did_close(&self, p: DidCloseTextDocumentParams) {
        self.0.idle_training.touch();
        did_close::handle(&self.0, p).await
    }
    async fn did_save(&self, p: DidSaveTextDocumentParams) {
        self.0.idle_training.touch();
        did_save::handle(&self.0, p).await
    }
    async fn did_change_watched_files(&self, p: DidChangeWatchedFilesParams) {
        did_change_watched_files::handle(&self.0, p).await
    }
    async fn did_change_configuration(&self, p: DidChangeConfigurationParams) {
        did_change_configuration::handle(&self.0, p).await
    }
    async fn completion(&self, p: CompletionParams) -> Result<Option<CompletionResponse>> {
        self.0.idle_training.touch();
        completion::handle(&self.0, p).await
    }
    async fn code_action(&self, p: CodeActionParams) -> Result<Option<CodeActionResponse>> {
        self.0.idle_training.touch();
        code_action::handle(&self.0, p).await
    }
    async fn code_action_resolve(&self, a: CodeAction) -> Result<CodeAction> {
        self.0.idle_training.touch();
        code_action_resolve::handle(&self.0, a).await
    }
    async fn execute_command(&self, p: ExecuteCommandParams) -> Result<Option<LSPAny>> {
        self.0.idle_training.touch();
        execute_command::handle(&self.0, p).await
    }
}

/// Requests and notifications outside the `LanguageServer` trait (see [`crate::ext`]).
impl Server {
    pub(crate) async fn inline_completion(
        &self,
        p: InlineCompletionParams,
    ) -> Result<Option<InlineCompletionResponse>> {
        self.0.idle_training.touch();
        inline_completion::handle(&self.0, p).await
    }
    pub(crate) async fn explain(&self, p: ExplainParams) -> Result<ExplainResult> {
        self.0.idle_training.touch();
        explain::handle(&self.0, p).await
    }
    pub(crate) async fn context(&self, p: TextDocumentPositionParams) -> Result<ContextResult> {
        self.0.idle_training.touch();
        context::handle(&self.0, p).await
    }
    pub(crate) async fn status(&self, p: StatusParams) -> Result<StatusReport> {
        status::handle(&self.0, p).await
    }
    pub(crate) async fn document_text(&self, p: TextDocumentIdentifier) -> Result<String> {
        self.0.idle_training.touch();
        document_text::handle(&self.0, p).await
    }
    pub(crate) async fn cursor(&self, p: TextDocumentPositionParams) {
        cursor::handle(&self.0, p).await
    }
    pub(crate) async fn malformed_request(&self, p: MalformedParams) -> Result<()> {
        malformed::request(&self.0, p).await
    }
    pub(crate) async fn malformed_notification(&self, p: MalformedParams) {
        malformed::notification(&self.0, p).await
    }
}
