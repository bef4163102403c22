//! Keeping the index fresh: background updates with work-done progress, the file watcher
//! (when the client does not watch), and the status notification after each change.

use crate::handlers::status::send_status;
use crate::lock;
use crate::session::Session;
use patois_index::Progress;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use tower_lsp_server::ls_types::{MessageType, ProgressToken};

/// The indexer's state: whether an update runs, is asked for again or is scheduled, which
/// changes matter, and who watches the files.
#[derive(Default)]
pub(crate) struct Indexer {
    running: AtomicBool,
    /// A re-index was asked for while one ran: run once more after it.
    again: AtomicBool,
    /// An update is scheduled (changes within 300 ms of it join it).
    pending: AtomicBool,
    /// Which file changes matter to the index; set when the workspace opens.
    filter: OnceLock<ChangeFilter>,
    /// Our own watcher, when the client does not watch the files.
    watcher: Mutex<Option<notify::RecommendedWatcher>>,
    /// The client reports file changes (`workspace/didChangeWatchedFiles`).
    client_watches: AtomicBool,
}

impl Indexer {
    pub(crate) fn is_running(&self) -> bool {
        self.running.load(Ordering::SeqCst)
    }

    pub(crate) fn set_client_watches(&self, watches: bool) {
        self.client_watches.store(watches, Ordering::Relaxed);
    }

    pub(crate) fn client_watches(&self) -> bool {
        self.client_watches.load(Ordering::Relaxed)
    }

    /// Which changes matter from now on: files under `root`, not those in `index_dir`.
    pub(crate) fn set_filter(&self, root: &Path, index_dir: &Path) {
        let _ = self.filter.set(ChangeFilter::new(root, index_dir));
    }

    /// Whether any of these changed paths can change the index.
    pub(crate) fn changes_matter<'a>(&self, mut paths: impl Iterator<Item = &'a Path>) -> bool {
        self.filter.get().is_some_and(|f| paths.any(|p| f.relevant(p)))
    }

    pub(crate) fn stop_watching(&self) {
        lock(&self.watcher).take();
    }
}

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

/// Updates the index in the background with work-done progress; requests keep being
/// served from the index as it was.
pub(crate) async fn reindex(s: &Arc<Session>, title: &str) {
    let Ok(engine) = s.engine() else { return };
    let me = &s.indexer;
    if me.running.swap(true, Ordering::SeqCst) {
        me.again.store(true, Ordering::SeqCst);
        return;
    }
    let token = ProgressToken::String(format!("patois/index/{}", std::process::id()));
    let progress = match s.client.create_work_done_progress(token.clone()).await {
        Ok(()) => {
            Some(s.client.progress(token, title.to_string()).with_percentage(0).begin().await)
        }
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
            s.client.log_message(MessageType::ERROR, text).await;
            "indexing failed".into()
        }
        Err(e) => format!("indexing crashed (please report it): {e}"),
    };
    if let Some(p) = progress {
        p.finish_with_message(msg.clone()).await;
    }
    s.client.log_message(MessageType::INFO, format!("patois: index {msg}")).await;
    me.running.store(false, Ordering::SeqCst);
    send_status(s).await;
    if me.again.swap(false, Ordering::SeqCst) {
        Box::pin(reindex(s, "patois: updating the index")).await;
    }
}

/// Updates the index 300 ms after the first of a burst of relevant changes.
pub(crate) fn reindex_soon(s: &Arc<Session>) {
    if s.indexer.pending.swap(true, Ordering::SeqCst) {
        return;
    }
    let s = s.clone();
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        s.indexer.pending.store(false, Ordering::SeqCst);
        reindex(&s, "patois: updating the index").await;
    });
}

/// Watches the working tree (and .git for HEAD moves) when the client does not.
pub(crate) fn start_watcher(s: &Arc<Session>, root: &Path) {
    use notify::{RecursiveMode, Watcher};
    let weak = Arc::downgrade(s);
    let handle = tokio::runtime::Handle::current();
    let w = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
        let Ok(ev) = ev else { return };
        let Some(s) = weak.upgrade() else { return };
        if s.indexer.changes_matter(ev.paths.iter().map(PathBuf::as_path)) {
            let _guard = handle.enter();
            reindex_soon(&s);
        }
    });
    if let Ok(mut w) = w {
        if w.watch(root, RecursiveMode::Recursive).is_ok() {
            *lock(&s.indexer.watcher) = Some(w);
        }
    }
}

/// Which changed paths can change the index. Not patois's own index folder (writing it
/// must not trigger another update), not git's object store, not ignored files (build
/// output changes constantly and never enters the index).
struct ChangeFilter {
    root: PathBuf,
    index_dir: PathBuf,
    git_objects: PathBuf,
    ignored: ignore::gitignore::Gitignore,
}

impl ChangeFilter {
    fn new(root: &Path, index_dir: &Path) -> ChangeFilter {
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

    fn relevant(&self, p: &Path) -> bool {
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
