//! One file per LSP request or notification. Each exposes `handle(session, params)`.

pub(crate) mod ask;
pub(crate) mod code_action;
pub(crate) mod code_action_resolve;
pub(crate) mod completion;
pub(crate) mod context;
pub(crate) mod cursor;
pub(crate) mod did_change;
pub(crate) mod did_change_configuration;
pub(crate) mod did_change_watched_files;
pub(crate) mod did_close;
pub(crate) mod did_open;
pub(crate) mod did_save;
pub(crate) mod document_text;
pub(crate) mod execute_command;
pub(crate) mod explain;
pub(crate) mod initialize;
pub(crate) mod initialized;
pub(crate) mod inline_completion;
pub(crate) mod malformed;
pub(crate) mod next_edit;
pub(crate) mod shutdown;
pub(crate) mod status;
