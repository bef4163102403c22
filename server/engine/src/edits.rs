//! The user's recent edits, coalesced per location: consecutive edits within a few lines
//! of each other in one document are one hunk, from the text before the first of them to
//! the text after the last.

use patois_retrieve::EditHunk;
use std::collections::VecDeque;
use std::sync::Arc;

/// Hunks kept (the newest).
const KEPT: usize = 16;
/// An edit this many lines or fewer from the previous one continues its hunk.
const NEAR: u32 = 3;

/// Edits still being made at one place.
struct Burst {
    path: String,
    before: Arc<String>,
    after: Arc<String>,
    line: u32,
}

#[derive(Default)]
pub(crate) struct EditLog {
    done: VecDeque<EditHunk>,
    open: Option<Burst>,
}

impl EditLog {
    /// `path` went from `before` to `after`, the edit starting at `line` (1-based).
    pub(crate) fn record(
        &mut self,
        path: &str,
        before: &Arc<String>,
        after: &Arc<String>,
        line: u32,
    ) {
        if let Some(b) =
            self.open.as_mut().filter(|b| b.path == path && b.line.abs_diff(line) <= NEAR)
        {
            b.after = after.clone();
            b.line = line;
            return;
        }
        if let Some(b) = self.open.take() {
            self.close(b);
        }
        self.open = Some(Burst {
            path: path.to_string(),
            before: before.clone(),
            after: after.clone(),
            line,
        });
    }

    fn close(&mut self, b: Burst) {
        if let Some(h) = EditHunk::between(&b.path, &b.before, &b.after) {
            self.done.push_front(h);
            self.done.truncate(KEPT);
        }
    }

    /// The hunks, newest first, without those whose new text is no longer in the document
    /// (`text_of` gives a document's current text; `None`: closed, kept as it was).
    pub(crate) fn hunks(&self, text_of: impl Fn(&str) -> Option<Arc<String>>) -> Vec<EditHunk> {
        let open = self.open.as_ref().and_then(|b| EditHunk::between(&b.path, &b.before, &b.after));
        open.into_iter()
            .chain(self.done.iter().cloned())
            .filter(|h| {
                h.added.is_empty()
                    || text_of(&h.path).is_none_or(|t| t.contains(h.added.join("\n").as_str()))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Arc<String> {
        Arc::new(s.to_string())
    }

    #[test]
    fn nearby_edits_coalesce_far_ones_do_not_and_stale_hunks_drop() {
        let mut log = EditLog::default();
        let v0 = text("fn f(a: u32) {\n    a\n}\n");
        let v1 = text("fn f(a: u32, b) {\n    a\n}\n");
        let v2 = text("fn f(a: u32, b: u8) {\n    a\n}\n");
        log.record("a.rs", &v0, &v1, 1);
        log.record("a.rs", &v1, &v2, 1);
        let other0 = text("x\n");
        let other1 = text("x\ny\n");
        log.record("b.rs", &other0, &other1, 2);
        let hunks = log.hunks(|p| Some(if p == "a.rs" { v2.clone() } else { other1.clone() }));
        assert_eq!(hunks.len(), 2, "{hunks:?}");
        assert_eq!(hunks[0].path, "b.rs", "newest first");
        assert_eq!(hunks[1].removed, ["fn f(a: u32) {"], "one hunk for the two edits");
        assert_eq!(hunks[1].added, ["fn f(a: u32, b: u8) {"]);
        // The signature was edited again since: the old hunk's text is gone.
        let v3 = text("fn g() {\n}\n");
        assert_eq!(
            log.hunks(|p| Some(if p == "a.rs" { v3.clone() } else { other1.clone() })).len(),
            1
        );
    }
}
