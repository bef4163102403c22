//! The history source: the commits that last changed the enclosing function (blamed on
//! the editor's text) and that touched this file, with their pull requests.

use crate::cursor::CursorContext;
use crate::fusion::item;
use crate::Result;
use crate::{Citation, Item, Request, Source};
use patois_index::Index;
use std::collections::HashSet;

pub(crate) fn history(
    index: &Index,
    req: &Request,
    cx: &CursorContext,
    cap: usize,
) -> Result<Vec<Item>> {
    let mut ids: Vec<(String, String)> = Vec::new();
    // The commits that last changed the enclosing function come first.
    if let Some((s, e)) = cx.enclosing {
        if let Ok(Some(repo)) = patois_vcs::Repo::discover(index.root()) {
            if let Ok(blamed) = repo.blame_lines(req.path, Some(req.text), (s, e)) {
                for id in blamed {
                    ids.push((id, format!("last changed lines {s}-{e} (the enclosing function)")));
                }
            }
        }
    }
    for c in index.commits_touching(req.path, cap)? {
        ids.push((c.id, "touched this file".into()));
    }
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for (id, why) in ids {
        if out.len() >= cap || !seen.insert(id.clone()) {
            continue;
        }
        let Some(c) = index.commit(&id)? else { continue };
        let mut text = format!(
            "commit {} by {}\n{}",
            &c.id[..c.id.len().min(10)],
            c.author,
            c.message.trim_end()
        );
        if let Some(pr) = c.pr.and_then(|n| index.pr(n).ok().flatten()) {
            text.push_str(&format!(
                "\n\nPR #{}: {}\n{}",
                pr.number,
                pr.title,
                truncate(&pr.text, 600)
            ));
        }
        let changed = c
            .files
            .iter()
            .find(|f| f.path == req.path)
            .map(|f| format!(" (+{} -{})", f.added, f.removed))
            .unwrap_or_default();
        out.push(item(
            Source::History,
            Citation {
                path: req.path.to_string(),
                start_line: cx.enclosing.map(|e| e.0).unwrap_or(1),
                end_line: cx.enclosing.map(|e| e.1).unwrap_or(1),
                commit: Some(c.id.clone()),
                pr: c.pr,
            },
            format!("{}{changed}", c.summary),
            text,
            c.time as f32,
            why,
        ));
    }
    Ok(out)
}

fn truncate(s: &str, max: usize) -> &str {
    &s[..s.floor_char_boundary(max)]
}
