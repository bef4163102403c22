//! Keeping the index fresh: background updates with work-done progress, the file watcher
//! (when the client does not watch), and the status notification after each change.

use crate::ext::StatusNotification;
use crate::session::Session;
use patois_index::Progress;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
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

    /// Updates the index 300 ms after the first of a burst of relevant changes.
    pub(crate) fn reindex_soon(self: &Arc<Self>) {
        if self.reindex_pending.swap(true, Ordering::SeqCst) {
            return;
        }
        let me = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            me.reindex_pending.store(false, Ordering::SeqCst);
            me.reindex("patois: updating the index").await;
        });
    }

    /// Watches the working tree (and .git for HEAD moves) when the client does not.
    pub(crate) fn start_watcher(self: &Arc<Self>, root: &Path) {
        use notify::{RecursiveMode, Watcher};
        let me = Arc::downgrade(self);
        let handle = tokio::runtime::Handle::current();
        let w = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
            let Ok(ev) = ev else { return };
            let Some(me) = me.upgrade() else { return };
            if me.changes_matter(ev.paths.iter().map(PathBuf::as_path)) {
                let _guard = handle.enter();
                me.reindex_soon();
            }
        });
        if let Ok(mut w) = w {
            if w.watch(root, RecursiveMode::Recursive).is_ok() {
                *self.watcher.lock().unwrap_or_else(|p| p.into_inner()) = Some(w);
            }
        }
    }

    /// Whether any of these changed paths can change the index.
    pub(crate) fn changes_matter<'a>(&self, mut paths: impl Iterator<Item = &'a Path>) -> bool {
        self.change_filter.get().is_some_and(|f| paths.any(|p| f.relevant(p)))
    }
}

/// Which changed paths can change the index. Not patois's own index folder (writing it
/// must not trigger another update), not git's object store, not ignored files (build
/// output changes constantly and never enters the index).
pub(crate) struct ChangeFilter {
    root: PathBuf,
    index_dir: PathBuf,
    git_objects: PathBuf,
    ignored: ignore::gitignore::Gitignore,
}

impl ChangeFilter {
    pub(crate) fn new(root: &Path, index_dir: &Path) -> ChangeFilter {
        let mut gi = ignore::gitignore::GitignoreBuilder::new(root);
        gi.add(root.join(".gitignore"));
        gi.add(root.join(".patoisignore"));
        ChangeFilter {
            root: root.to_path_buf(),
            index_dir: index_dir.to_path_buf(),
            git_objects: root.join(".git").join("objects"),
            ignored: gi.build().unwrap_or_else(|_| ignore::gitignore::Gitignore::empty()),
        }
    }

    pub(crate) fn relevant(&self, p: &Path) -> bool {
        p.starts_with(&self.root)
            && !p.starts_with(&self.index_dir)
            && !p.starts_with(&self.git_objects)
            && !self.ignored.matched_path_or_any_parents(p, p.is_dir()).is_ignore()
    }
}

#[cfg(test)]
mod tests {
    use super::ChangeFilter;
    use std::path::Path;

    #[test]
    fn the_index_folder_git_objects_and_ignored_files_do_not_matter() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join(".gitignore"), "target/\n*.log\n").unwrap();
        let f = ChangeFilter::new(root, &root.join(".patois"));
        assert!(f.relevant(&root.join("src/main.rs")));
        assert!(f.relevant(&root.join(".git/HEAD")), "a HEAD move changes the history");
        assert!(!f.relevant(&root.join(".patois/index/meta.json")));
        assert!(!f.relevant(&root.join(".git/objects/ab/cdef")));
        assert!(!f.relevant(&root.join("target/debug/x")));
        assert!(!f.relevant(&root.join("run.log")));
        assert!(!f.relevant(Path::new("/elsewhere/src/main.rs")));
    }
}
