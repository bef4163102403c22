//! Next edits by propagation, without the model: when the user's latest edit renamed an
//! identifier, the places that still use the old name — in the document and in the
//! indexed files — each with the same replacement and a citation.

use crate::{lock, Engine, Error, Result};
use patois_retrieve::{contains_word, word_positions, Citation, EditHunk};
use serde::{Deserialize, Serialize};

/// One suggested edit: replace bytes `start..end` of line `line` (1-based) of `path` with
/// `new_text`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NextEdit {
    pub path: String,
    pub line: u32,
    /// The line's text as read, so that editors can count columns in their encoding.
    pub line_text: String,
    pub start: usize,
    pub end: usize,
    pub new_text: String,
    /// Why: the edit it follows.
    pub reason: String,
    pub citation: Citation,
}

/// Suggestions returned at most.
const MAX_EDITS: usize = 30;

/// The tokens of a line: identifiers, and every other character alone (spaces included).
fn tokens(line: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in line.char_indices() {
        let ident = c.is_alphanumeric() || c == '_';
        match (ident, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push(&line[s..i]);
                out.push(&line[i..i + c.len_utf8()]);
                start = None;
            }
            (false, None) => out.push(&line[i..i + c.len_utf8()]),
            (true, Some(_)) => {}
        }
    }
    if let Some(s) = start {
        out.push(&line[s..]);
    }
    out
}

fn is_identifier(t: &str) -> bool {
    t.chars().next().is_some_and(|c| c.is_alphabetic() || c == '_')
}

/// The rename a hunk made: its old and new lines differ only where one identifier became
/// another, the same pair everywhere (`fetch_value` → `load_value`).
pub fn rename_in(hunk: &EditHunk) -> Option<(String, String)> {
    if hunk.removed.len() != hunk.added.len() || hunk.removed.is_empty() {
        return None;
    }
    let mut pair: Option<(&str, &str)> = None;
    for (old, new) in hunk.removed.iter().zip(&hunk.added) {
        let (a, b) = (tokens(old), tokens(new));
        if a.len() != b.len() {
            return None;
        }
        for (x, y) in a.iter().zip(&b).filter(|(x, y)| x != y) {
            if !is_identifier(x) || !is_identifier(y) || pair.is_some_and(|p| p != (*x, *y)) {
                return None;
            }
            pair = Some((x, y));
        }
    }
    pair.map(|(a, b)| (a.to_string(), b.to_string()))
}

/// Every whole-word `old` in `text` (its lines numbered from `first_line`) as an edit.
fn uses_in(
    text: &str,
    first_line: u32,
    old: &str,
    edit: &dyn Fn(u32, &str, usize) -> NextEdit,
) -> Vec<NextEdit> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        for start in word_positions(line, old) {
            out.push(edit(first_line + i as u32, line, start));
        }
    }
    out
}

impl Engine {
    /// The edits that follow the user's latest rename in `path` (see [`rename_in`]): the
    /// old name's other uses in the document, then in the other indexed files.
    pub fn next_edits(&self, path: &str) -> Result<Vec<NextEdit>> {
        let text = lock(&self.docs).get(path).map(|d| d.text.clone());
        let Some(text) = text else { return Ok(Vec::new()) };
        let hunks = self.recent_hunks();
        let Some((hunk, (old, new))) =
            hunks.iter().filter(|h| h.path == path).find_map(|h| rename_in(h).map(|r| (h, r)))
        else {
            return Ok(Vec::new());
        };
        let reason = format!("`{old}` was renamed to `{new}` at {path}:{}", hunk.start_line);
        let edit = |file: &str, line: u32, line_text: &str, start: usize| NextEdit {
            path: file.to_string(),
            line,
            line_text: line_text.to_string(),
            start,
            end: start + old.len(),
            new_text: new.clone(),
            reason: reason.clone(),
            citation: Citation::lines(file, line, line),
        };
        // A name the index defines is the same thing wherever it is used; any other (a
        // local, a parameter) only within the top-level item the edit is in.
        let defined = !self.index().symbols_named(&old, 1).map_err(Error::index)?.is_empty();
        let (first, region) = if defined {
            (1, text.as_str())
        } else {
            patois_syntax::top_level_item(&text, hunk.start_line)
        };
        let mut out = uses_in(region, first, &old, &|l, t, s| edit(path, l, t, s));
        let elsewhere = match defined {
            true => self
                .index()
                .search_chunks(&old, MAX_EDITS, &|h| h.path != path && contains_word(&h.text, &old))
                .map_err(Error::index)?,
            false => Vec::new(),
        };
        for h in &elsewhere {
            out.extend(uses_in(&h.text, h.start_line, &old, &|l, t, s| edit(&h.path, l, t, s)));
        }
        out.dedup_by(|a, b| (&a.path, a.line, a.start) == (&b.path, b.line, b.start));
        out.truncate(MAX_EDITS);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hunk(removed: &[&str], added: &[&str]) -> EditHunk {
        EditHunk {
            path: "a.rs".into(),
            start_line: 3,
            removed: removed.iter().map(|s| s.to_string()).collect(),
            added: added.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn a_rename_is_one_identifier_becoming_another_everywhere_in_the_hunk() {
        let renamed = hunk(&["let v = fetch_value(k);"], &["let v = load_value(k);"]);
        assert_eq!(rename_in(&renamed), Some(("fetch_value".into(), "load_value".into())));
        let two = hunk(&["f(a); f(b);", "g(a)"], &["h(a); h(b);", "g(a)"]);
        assert_eq!(rename_in(&two), Some(("f".into(), "h".into())));
        assert_eq!(rename_in(&hunk(&["f(a)"], &["f(a, b)"])), None, "an argument added");
        assert_eq!(rename_in(&hunk(&["f(a); g(b)"], &["h(a); k(b)"])), None, "two renames");
        assert_eq!(rename_in(&hunk(&["x = 1"], &["x = 2"])), None, "a number is no name");
        assert_eq!(rename_in(&hunk(&[], &["new line"])), None);
    }
}
