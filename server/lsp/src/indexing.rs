//! Keeping the index fresh: background updates with work-done progress, the file watcher
//! (when the client does not watch), and the status notification after each change.

use crate::ext::StatusNotification;
use crate::session::Session;
use patois_index::Progress;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use tower_lsp_server::ls_types::{MessageType, ProgressToken};

/// Index progress, forwarded to the async side every 64 files.
struct ProgressBridge {
    tx: tokio::sync::mpsc::UnboundedSender<(u64, u64)>,
    done: AtomicU64,
    total: AtomicU64,
}

impl Progress for ProgressBridge {
    fn phase(&self, _name: &str, total: u64) {
        self.total.store(total, Ordering::Relaxed);
        self.done.store(0, Ordering::Relaxed);
    }
    fn inc(&self, n: u64) {
        let d = self.done.fetch_add(n, Ordering::Relaxed) + n;
        let t = self.total.load(Ordering::Relaxed).max(1);
        if d.is_multiple_of(64) || d == t {
            let _ = self.tx.send((d, t));
        }
    }
}

impl Session {
    /// Sends `patois/status` (nothing before a workspace is open).
    pub(crate) async fn send_status(&self) {
        if let Ok(report) = self.status_report().await {
            self.client.send_notification::<StatusNotification>(report).await;
        }
    }

    /// Updates the index in the background with work-done progress; requests keep
    /// being served from the index as it was.
    pub(crate) async fn reindex(self: &Arc<Self>, title: &str) {
        let Ok(engine) = self.engine() else { return };
        if self.indexing.swap(true, Ordering::SeqCst) {
            self.reindex_again.store(true, Ordering::SeqCst);
            return;
        }
        let token = ProgressToken::String(format!("patois/index/{}", std::process::id()));
        let progress = match self.client.create_work_done_progress(token.clone()).await {
            Ok(()) => Some(
                self.client.progress(token, title.to_string()).with_percentage(0).begin().await,
            ),
            Err(_) => None,
        };
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let bridge = ProgressBridge { tx, done: 0.into(), total: 0.into() };
        let job =
            tokio::task::spawn_blocking(move || engine.update_index(&Default::default(), &bridge));
        tokio::pin!(job);
        let result = loop {
            tokio::select! {
                r = &mut job => break r,
                Some((d, t)) = rx.recv() => {
                    if let Some(p) = &progress {
                        let percent = (d * 100 / t.max(1)) as u32;
                        p.report_with_message(format!("{d}/{t}"), percent).await;
                    }
                }
            }
        };
        let msg = match result {
            Ok(Ok(r)) => format!(
                "{} files, {} commits ({} parsed, {} new commits)",
                r.files, r.commits, r.parsed, r.new_commits
            ),
            Ok(Err(e)) => {
                let text = format!("patois: indexing failed: {e}");
                self.client.log_message(MessageType::ERROR, text).await;
                "indexing failed".into()
            }
            Err(e) => format!("indexing crashed (please report it): {e}"),
        };
        if let Some(p) = progress {
            p.finish_with_message(msg.clone()).await;
        }
        self.client.log_message(MessageType::INFO, format!("patois: index {msg}")).await;
        self.indexing.store(false, Ordering::SeqCst);
        self.send_status().await;
        if self.reindex_again.swap(false, Ordering::SeqCst) {
            Box::pin(self.reindex("patois: updating the index")).await;
        }
    }

    /// Watches the working tree (and .git for HEAD moves) when the client does not.
    pub(crate) fn start_watcher(self: &Arc<Self>, root: &Path) {
        use notify::{RecursiveMode, Watcher};
        let me = Arc::downgrade(self);
        let handle = tokio::runtime::Handle::current();
        let pending = Arc::new(AtomicBool::new(false));
        let index_dir = root.join(patois_index::DEFAULT_DIR);
        let git_objects = root.join(".git").join("objects");
        // Build output and other ignored files change constantly and never enter the index.
        let mut gi = ignore::gitignore::GitignoreBuilder::new(root);
        gi.add(root.join(".gitignore"));
        gi.add(root.join(".patoisignore"));
        let ignored = gi.build().unwrap_or_else(|_| ignore::gitignore::Gitignore::empty());
        let root_dir = root.to_path_buf();
        let relevant = move |p: &Path| {
            p.starts_with(&root_dir)
                && !p.starts_with(&index_dir)
                && !p.starts_with(&git_objects)
                && !ignored.matched_path_or_any_parents(p, p.is_dir()).is_ignore()
        };
        let w = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
            let Ok(ev) = ev else { return };
            if !ev.paths.iter().any(|p| relevant(p)) || pending.swap(true, Ordering::SeqCst) {
                return;
            }
            let me = me.clone();
            let pending = pending.clone();
            handle.spawn(async move {
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                pending.store(false, Ordering::SeqCst);
                if let Some(me) = me.upgrade() {
                    me.reindex("patois: updating the index").await;
                }
            });
        });
        if let Ok(mut w) = w {
            if w.watch(root, RecursiveMode::Recursive).is_ok() {
                *self.watcher.lock().unwrap_or_else(|p| p.into_inner()) = Some(w);
            }
        }
    }
}
