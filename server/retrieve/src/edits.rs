//! The recent-edits source: what the user just changed, as unified-diff hunks (Zed's edit
//! prediction and Copilot's next-edit suggestions read the same signal): someone renaming
//! or adding a parameter is about to make the matching change elsewhere.

use crate::fusion::item;
use crate::{Citation, Item, Request, Source};

/// One coalesced edit: lines `start_line..` of `path` (1-based, in the current text) now
/// read `added` where they read `removed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EditHunk {
    pub path: String,
    pub start_line: u32,
    pub removed: Vec<String>,
    pub added: Vec<String>,
}

impl EditHunk {
    /// The hunk between two versions of a file: the lines between their common start and
    /// common end. `None` when they are equal.
    pub fn between(path: &str, before: &str, after: &str) -> Option<EditHunk> {
        let a: Vec<&str> = before.split('\n').collect();
        let b: Vec<&str> = after.split('\n').collect();
        let head = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
        let tail =
            a[head..].iter().rev().zip(b[head..].iter().rev()).take_while(|(x, y)| x == y).count();
        let removed: Vec<String> = a[head..a.len() - tail].iter().map(|s| s.to_string()).collect();
        let added: Vec<String> = b[head..b.len() - tail].iter().map(|s| s.to_string()).collect();
        if removed.is_empty() && added.is_empty() {
            return None;
        }
        Some(EditHunk { path: path.to_string(), start_line: head as u32 + 1, removed, added })
    }

    /// The hunk as a unified diff, at most `max_lines` lines of each side.
    pub fn unified(&self, max_lines: usize) -> String {
        let mut out = format!(
            "@@ -{},{} +{},{} @@",
            self.start_line,
            self.removed.len(),
            self.start_line,
            self.added.len()
        );
        for l in self.removed.iter().take(max_lines) {
            out.push_str(&format!("\n-{l}"));
        }
        for l in self.added.iter().take(max_lines) {
            out.push_str(&format!("\n+{l}"));
        }
        out
    }
}

/// Lines of each side shown per hunk.
const HUNK_LINES: usize = 12;

/// The newest edits first; the current document's own edits only when they are far from
/// the cursor (near it the prompt shows the text itself).
pub(crate) fn recent_edits(req: &Request, cursor_line: u32, cap: usize) -> Vec<Item> {
    req.edits
        .iter()
        .filter(|h| h.path != req.path || h.start_line.abs_diff(cursor_line) > 40)
        .take(cap)
        .enumerate()
        .map(|(age, h)| {
            let end_line = h.start_line + (h.added.len() as u32).max(1) - 1;
            let citation = Citation {
                path: h.path.clone(),
                start_line: h.start_line,
                end_line,
                commit: None,
                pr: None,
            };
            let why = match age {
                0 => "the latest edit".to_string(),
                n => format!("edited {n} edit(s) before the latest"),
            };
            item(Source::Edit, citation, "edited".into(), h.unified(HUNK_LINES), 1.0, why)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::EditHunk;

    #[test]
    fn a_hunk_is_what_lies_between_the_common_start_and_end() {
        let h = EditHunk::between(
            "a.rs",
            "fn f(x: u32) {\n    x\n}\n",
            "fn f(x: u32, y: u32) {\n    x\n}\n",
        )
        .unwrap();
        assert_eq!((h.start_line, h.removed.len(), h.added.len()), (1, 1, 1));
        assert_eq!(h.unified(5), "@@ -1,1 +1,1 @@\n-fn f(x: u32) {\n+fn f(x: u32, y: u32) {");
        let inserted = EditHunk::between("a.rs", "a\nc\n", "a\nb\nc\n").unwrap();
        assert_eq!(
            (inserted.start_line, inserted.removed, inserted.added),
            (2, vec![], vec!["b".to_string()])
        );
        assert_eq!(EditHunk::between("a.rs", "same", "same"), None);
    }
}
