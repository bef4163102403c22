//! `initialized`: starts watching files, indexes in the background, then loads the model;
//! starts the idle trainer (it does nothing unless `train_when_idle` is set).

use crate::indexing::ChangeFilter;
use crate::session::Session;
use serde_json::json;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tower_lsp_server::ls_types::{InitializedParams, Registration};

pub(crate) async fn handle(s: &Arc<Session>, _: InitializedParams) {
    let Some(root) = s.root.get().cloned() else { return };
    if let Ok(e) = s.engine() {
        let _ = s.change_filter.set(ChangeFilter::new(&root, e.index().dir()));
    }
    if s.client_watches.load(Ordering::Relaxed) {
        let reg = Registration {
            id: "patois-watch".into(),
            method: "workspace/didChangeWatchedFiles".into(),
            register_options: Some(json!({ "watchers": [{ "globPattern": "**/*" }] })),
        };
        let _ = s.client.register_capability(vec![reg]).await;
    } else {
        s.start_watcher(&root);
    }
    if let Ok(e) = s.engine() {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        s.idle_training.start(e, tx);
        tokio::spawn(crate::idle_training::show_progress(s.clone(), rx));
    }
    let s = s.clone();
    tokio::spawn(async move {
        s.reindex("patois: indexing").await;
        if let Ok(e) = s.engine() {
            // A model that fails to load is reported by the status (modelError).
            let _ = tokio::task::spawn_blocking(move || e.load_model()).await;
        }
        s.send_status().await;
    });
}
