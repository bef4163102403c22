//! Warm-ups that typing pauses instead of stopping. While the cursor stays on a line, the
//! prompt up to that line's start stays the same (the retrieved context is kept for the
//! line and the ones below it, the lines above are as they were), so a warm-up prefills
//! only that part: what it
//! computed stays of use whatever is typed on the line. It yields to every model run the
//! user waits for, which stops it after its current small batch, and the
//! warm-up started after that answer goes on where it stopped. It ends for good when the
//! lines above change or a newer warm-up starts (the cursor rested elsewhere).

use super::budget::MIN_BACKGROUND_BATCH;
use crate::{lock, Engine};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// What warm-ups watch besides their document.
#[derive(Default)]
pub(crate) struct Warmups {
    /// Model runs the user waits for, running or about to.
    foreground: AtomicUsize,
    /// The number of the newest warm-up.
    newest: AtomicU64,
}

/// One warm-up: what must hold for its work to be of use.
pub(crate) struct WarmWatch {
    path: String,
    /// The document up to the start of the cursor's line.
    above: String,
    number: u64,
    /// The document's request-or-edit number, which changes whenever it may have changed.
    version: Arc<AtomicU64>,
    /// The number last checked, and whether the lines above were unchanged then.
    checked: Mutex<(u64, bool)>,
}

/// A model run the user waits for: warm-ups yield while it lives.
pub(crate) struct ForegroundRun<'a>(&'a Warmups);

impl Drop for ForegroundRun<'_> {
    fn drop(&mut self) {
        self.0.foreground.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Engine {
    /// Prompt tokens per batch of a warm-up, at the measured speed.
    pub(crate) fn background_batch(&self) -> usize {
        self.speed.get().map_or(MIN_BACKGROUND_BATCH, |s| s.background_batch())
    }

    /// Counts a model run the user waits for until the returned guard is dropped.
    pub(crate) fn foreground_run(&self) -> ForegroundRun<'_> {
        self.warmups.foreground.fetch_add(1, Ordering::SeqCst);
        ForegroundRun(&self.warmups)
    }

    /// A new warm-up of `path` for a cursor at `cursor` in `text`; older ones end.
    pub(crate) fn watch_warm(&self, path: &str, text: &str, cursor: usize) -> WarmWatch {
        let line_start = patois_types::line_start_at(text, cursor);
        let version = self.tickets.version_of(path);
        let now = version.load(Ordering::SeqCst);
        WarmWatch {
            path: path.to_string(),
            above: text[..line_start].to_string(),
            number: self.warmups.newest.fetch_add(1, Ordering::SeqCst) + 1,
            version,
            checked: Mutex::new((now, true)),
        }
    }

    /// Whether `warm` goes on: no run the user waits for needs the model, no newer
    /// warm-up started, and the document still has the lines above its cursor. This is
    /// the model's cancellation check, asked between the operations of every batch: the
    /// document is compared only after a request or an edit of it.
    pub(crate) fn warm_wanted(&self, warm: &WarmWatch) -> bool {
        if self.warmups.foreground.load(Ordering::SeqCst) > 0
            || self.warmups.newest.load(Ordering::SeqCst) != warm.number
        {
            return false;
        }
        let version = warm.version.load(Ordering::SeqCst);
        let mut checked = lock(&warm.checked);
        if checked.0 != version {
            let docs = lock(&self.docs);
            // A document the editor does not hold (closed) keeps its warm-up.
            let unchanged = docs.get(&warm.path).is_none_or(|d| d.text.starts_with(&warm.above));
            *checked = (version, unchanged);
        }
        checked.1
    }
}

#[cfg(test)]
mod tests {
    use crate::{Engine, Settings};
    use patois_index::Index;
    use patois_testkit::Fixture;
    use std::sync::Arc;

    #[test]
    fn a_warm_up_pauses_for_the_user_and_ends_when_the_lines_above_change() {
        let fx = Fixture::git();
        let e = Engine::new(
            Index::open(fx.root(), &fx.root().join(".patois")).unwrap(),
            Settings::default(),
        );
        let doc = "fn main() {\n    let x = 1;\n    le\n}\n";
        let cursor = doc.find("le\n").unwrap() + 2;
        let change = |text: String| e.document_changed("m.rs", Arc::new(text), 2);
        change(doc.to_string());
        let warm = e.watch_warm("m.rs", doc, cursor);
        assert!(e.warm_wanted(&warm));
        let run = e.foreground_run();
        assert!(!e.warm_wanted(&warm), "it yields while the user waits for the model");
        drop(run);
        assert!(e.warm_wanted(&warm), "and goes on after");
        change(doc.replace("    le\n", "    let y = x;\n    \n"));
        assert!(e.warm_wanted(&warm), "typing on the cursor's line leaves its work of use");
        change(doc.replace("x = 1", "x = 2"));
        assert!(!e.warm_wanted(&warm), "an edit above the cursor's line ends it");
        change(doc.to_string());
        let older = e.watch_warm("m.rs", doc, cursor);
        let newer = e.watch_warm("m.rs", doc, cursor - 4);
        assert!(!e.warm_wanted(&older) && e.warm_wanted(&newer), "a newer warm-up ends it");
    }
}
