//! Work nobody waits for yet (warming the model's cache, the completion after an accepted
//! one), and waiting for work that may become stale. Background work yields to anything
//! the user does: its ticket is stopped by any request or edit.

use patois_engine::{Engine, Run, Ticket};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Cancels its ticket when dropped: a request whose future the server drops (the client
/// cancelled it) stops its blocking work too.
pub(crate) struct CancelOnDrop(pub(crate) Ticket);
impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// How often a waiting request looks whether it became stale.
const STALE_CHECK: Duration = Duration::from_millis(5);

/// Runs `engine.complete_as(…, run)` on the blocking pool; its result is dropped (the
/// engine keeps what it computed: the cache of the model, or the completion).
pub(crate) fn run(engine: &Arc<Engine>, path: &str, text: Arc<String>, cursor: usize, run: Run) {
    let ticket = engine.begin_background(path);
    let (engine, path) = (engine.clone(), path.to_string());
    tokio::task::spawn_blocking(move || {
        let _ = engine.complete_as(&path, &text, cursor, &ticket, run);
    });
}

/// `work`'s output, or `None` as soon as `ticket` is cancelled (a newer request or an edit
/// of the document): the answer does not wait for the work to notice.
pub(crate) async fn unless_stale<T>(work: impl Future<Output = T>, ticket: &Ticket) -> Option<T> {
    tokio::pin!(work);
    let mut check = tokio::time::interval(STALE_CHECK);
    loop {
        tokio::select! {
            out = &mut work => return Some(out),
            _ = check.tick() => {
                if ticket.is_cancelled() {
                    return None;
                }
            }
        }
    }
}
