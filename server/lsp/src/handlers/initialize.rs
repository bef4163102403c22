//! `initialize`: negotiates the position encoding, opens the index of the workspace's
//! repository and says what the server provides.

use crate::errors::{blocking, from_engine};
use crate::ext::{ACCEPTED_COMMAND, EXPLAIN_COMMAND, REINDEX_COMMAND};
use crate::session::Session;
use crate::settings::merge_settings;
use crate::text::Encoding;
use patois_engine::{Engine, Settings};
use patois_index::Index;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tower_lsp_server::jsonrpc::{Error, Result};
use tower_lsp_server::ls_types::*;

/// The repository containing `dir`, and an engine on its index with the repository's
/// settings (`patois.toml`) under the editor's.
fn open_workspace(dir: &Path, options: Option<&Value>) -> Result<(PathBuf, Engine)> {
    let open_failed = |e: &dyn std::fmt::Display| {
        Error::invalid_params(format!("patois cannot open {}: {e}", dir.display()))
    };
    let root = patois_index::repo_root(dir).map_err(|e| open_failed(&e))?;
    let mut settings = Settings::from_repo(&root).map_err(|e| from_engine(&e))?;
    if let Some(opts) = options {
        settings = merge_settings(&settings, opts);
    }
    let index_dir = root.join(patois_index::DEFAULT_DIR);
    // Best effort: a read-only .git only means git may list .patois/.
    let _ = patois_index::exclude_default_dir(&root);
    let index = Index::open(&root, &index_dir).map_err(|e| open_failed(&e))?;
    Ok((root, Engine::new(index, settings)))
}

pub(crate) async fn handle(s: &Arc<Session>, params: InitializeParams) -> Result<InitializeResult> {
    let utf8 = params
        .capabilities
        .general
        .as_ref()
        .and_then(|g| g.position_encodings.as_ref())
        .is_some_and(|encs| encs.contains(&PositionEncodingKind::UTF8));
    let _ = s.encoding.set(if utf8 { Encoding::Utf8 } else { Encoding::Utf16 });
    let watches = params
        .capabilities
        .workspace
        .as_ref()
        .and_then(|w| w.did_change_watched_files.as_ref())
        .and_then(|d| d.dynamic_registration)
        .unwrap_or(false);
    s.indexer.set_client_watches(watches);
    #[allow(deprecated)]
    let root = params
        .workspace_folders
        .as_ref()
        .and_then(|f| f.first())
        .and_then(|f| f.uri.to_file_path().map(|p| p.into_owned()))
        .or_else(|| {
            params.root_uri.as_ref().and_then(|u| u.to_file_path().map(|p| p.into_owned()))
        });
    if let Some(root) = root {
        // Finding the repository and opening its index touch the disk: off the async workers.
        let options = params.initialization_options.clone();
        let opened = blocking(move || open_workspace(&root, options.as_ref())).await?;
        let (root, engine) = opened?;
        let _ = s.engine.set(Arc::new(engine));
        let _ = s.root.set(root);
    }
    let encoding = if utf8 { PositionEncodingKind::UTF8 } else { PositionEncodingKind::UTF16 };
    Ok(InitializeResult {
        server_info: Some(ServerInfo {
            name: "patois".into(),
            version: Some(env!("CARGO_PKG_VERSION").into()),
        }),
        capabilities: ServerCapabilities {
            position_encoding: Some(encoding),
            text_document_sync: Some(TextDocumentSyncCapability::Options(
                TextDocumentSyncOptions {
                    open_close: Some(true),
                    change: Some(TextDocumentSyncKind::INCREMENTAL),
                    save: Some(TextDocumentSyncSaveOptions::Supported(true)),
                    ..Default::default()
                },
            )),
            inline_completion_provider: Some(OneOf::Left(true)),
            completion_provider: Some(CompletionOptions {
                resolve_provider: Some(false),
                ..Default::default()
            }),
            code_action_provider: Some(CodeActionProviderCapability::Options(CodeActionOptions {
                code_action_kinds: Some(vec![CodeActionKind::new("source.patois.explain")]),
                resolve_provider: Some(true),
                work_done_progress_options: Default::default(),
            })),
            execute_command_provider: Some(ExecuteCommandOptions {
                commands: vec![
                    EXPLAIN_COMMAND.into(),
                    REINDEX_COMMAND.into(),
                    ACCEPTED_COMMAND.into(),
                ],
                work_done_progress_options: Default::default(),
            }),
            ..Default::default()
        },
        offset_encoding: None,
    })
}
