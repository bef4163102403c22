//! `initialized`: starts watching files, indexes in the background, then loads the model;
//! starts the idle trainer (it does nothing unless `train_when_idle` is set).

use crate::background::{idle_training, indexer};
use crate::handlers::status::send_status;
use crate::session::Session;
use serde_json::json;
use std::sync::Arc;
use tower_lsp_server::ls_types::{InitializedParams, Registration};

pub(crate) async fn handle(s: &Arc<Session>, _: InitializedParams) {
    let Some(root) = s.root.get().cloned() else { return };
    if let Ok(e) = s.engine() {
        s.indexer.set_filter(&root, e.index().dir());
    }
    if s.indexer.client_watches() {
        let reg = Registration {
            id: "patois-watch".into(),
            method: "workspace/didChangeWatchedFiles".into(),
            register_options: Some(json!({ "watchers": [{ "globPattern": "**/*" }] })),
        };
        let _ = s.client.register_capability(vec![reg]).await;
    } else {
        indexer::start_watcher(s, &root);
    }
    if let Ok(e) = s.engine() {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        s.idle_training.start(e, tx);
        tokio::spawn(idle_training::show_progress(s.clone(), rx));
    }
    let s = s.clone();
    tokio::spawn(async move {
        indexer::reindex(&s, "patois: indexing").await;
        if let Ok(e) = s.engine() {
            // A model that fails to load is reported by the status (modelError).
            let _ = tokio::task::spawn_blocking(move || e.load_model()).await;
        }
        send_status(&s).await;
    });
}
