//! The recent-documents source: the other documents open in the editor, most recently
//! edited first, around their last edit.

use crate::fusion::item;
use crate::{nth_line, Citation, Item, Request, Source};

pub(crate) fn recent(req: &Request, cap: usize) -> Vec<Item> {
    req.recent
        .iter()
        .filter(|d| d.path != req.path)
        .take(cap)
        .map(|d| {
            let total = d.text.lines().count().max(1) as u32;
            let start = d.edit_line.saturating_sub(10).max(1);
            let end = (d.edit_line + 10).min(total);
            let text = (start..=end).map(|n| nth_line(&d.text, n)).collect::<Vec<_>>().join("\n");
            item(
                Source::Recent,
                Citation {
                    path: d.path.clone(),
                    start_line: start,
                    end_line: end,
                    commit: None,
                    pr: None,
                },
                d.path.clone(),
                text,
                1.0,
                format!("edited recently (line {})", d.edit_line),
            )
        })
        .collect()
}
