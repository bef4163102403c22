//! Requests in flight and their cancellation.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// A request in flight: cancelled explicitly, by a newer request or an edit of the same
/// document, and (for background work) by any request or edit at all.
#[derive(Clone)]
pub struct Ticket {
    seq: u64,
    /// The newest request or edit number of the document.
    latest: Arc<AtomicU64>,
    cancelled: Arc<AtomicBool>,
    /// Background work yields to everything the user does: the activity count it saw.
    background: Option<(Arc<AtomicU64>, u64)>,
}

impl Ticket {
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
    }
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
            || self.latest.load(Ordering::SeqCst) != self.seq
            || self.background.as_ref().is_some_and(|(now, saw)| now.load(Ordering::SeqCst) != *saw)
    }
    /// A ticket nothing cancels (command-line use).
    pub fn detached() -> Ticket {
        Ticket {
            seq: 0,
            latest: Arc::new(AtomicU64::new(0)),
            cancelled: Arc::new(AtomicBool::new(false)),
            background: None,
        }
    }
}

/// Request numbers per document, and the activity count background work watches.
#[derive(Default)]
pub(crate) struct Tickets {
    seq: AtomicU64,
    latest: Mutex<HashMap<String, Arc<AtomicU64>>>,
    activity: Arc<AtomicU64>,
}

impl Tickets {
    /// A new number, newer than every ticket handed out so far.
    pub(crate) fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Something the user did in `path` (a request, an edit): every ticket of `path` and
    /// all background work is now stale. Returns the new number.
    pub(crate) fn bump(&self, path: &str) -> (u64, Arc<AtomicU64>) {
        let seq = self.next_seq();
        self.activity.store(seq, Ordering::SeqCst);
        let slot = self.version_of(path);
        slot.store(seq, Ordering::SeqCst);
        (seq, slot.clone())
    }

    /// A request for `path`, stopped by the next request or edit of `path`.
    pub(crate) fn begin(&self, path: &str) -> Ticket {
        let (seq, latest) = self.bump(path);
        Ticket { seq, latest, cancelled: Arc::new(AtomicBool::new(false)), background: None }
    }

    /// The request-or-edit number of `path`, which changes with every request or edit.
    pub(crate) fn version_of(&self, path: &str) -> Arc<AtomicU64> {
        let mut latest = crate::lock(&self.latest);
        latest.entry(path.to_string()).or_insert_with(|| Arc::new(AtomicU64::new(0))).clone()
    }

    /// Background work for `path`, stopped by the next request or edit of `path`, and by
    /// any request or edit anywhere; it stops nothing itself.
    pub(crate) fn begin_background(&self, path: &str) -> Ticket {
        let latest = self.version_of(path);
        let seq = latest.load(Ordering::SeqCst);
        let saw = self.activity.load(Ordering::SeqCst);
        let background = Some((self.activity.clone(), saw));
        Ticket { seq, latest, cancelled: Arc::new(AtomicBool::new(false)), background }
    }
}

#[cfg(test)]
mod tests {
    use super::Tickets;

    #[test]
    fn a_newer_request_or_edit_stops_older_requests_of_its_document_only() {
        let t = Tickets::default();
        let a = t.begin("a.rs");
        let b = t.begin("b.rs");
        assert!(!a.is_cancelled() && !b.is_cancelled());
        let a2 = t.begin("a.rs");
        assert!(a.is_cancelled() && !a2.is_cancelled() && !b.is_cancelled());
        t.bump("b.rs");
        assert!(b.is_cancelled() && !a2.is_cancelled(), "an edit of b.rs stops b's request");
    }

    #[test]
    fn background_work_yields_to_anything_and_stops_nothing() {
        let t = Tickets::default();
        let request = t.begin("a.rs");
        let warm = t.begin_background("a.rs");
        assert!(!request.is_cancelled(), "background work does not stop the user's request");
        assert!(!warm.is_cancelled());
        t.begin("other.rs");
        assert!(warm.is_cancelled(), "a request elsewhere stops background work");
        let warm = t.begin_background("a.rs");
        t.bump("a.rs");
        assert!(warm.is_cancelled(), "an edit stops it");
    }
}
