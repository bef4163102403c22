//! The same change at the lines shaped like the one the user changed: when a one-line edit
//! replaced a piece of text that is not one name (`std::task` by `$crate::macros::support`,
//! `[*]` by nothing, `HeadersInit` by `RequestInit['headers']`), the document's other lines
//! that contain the old piece and read nearly like the edited line did, as editing them
//! one after another with several cursors would.

use super::{edits_in, tokens, LineEdit, NextEdit};
use patois_retrieve::EditHunk;
use patois_types::edit_similarity;

/// How alike (edit similarity) a line must be to the edited line as it was for the change
/// to follow there: chosen on the tuning half of the benchmark corpus (0.5 showed a third
/// more suggestions, nearly all wrong; 0.7 lost exactly right ones).
const MIN_SIMILARITY: f64 = 0.6;

/// Lines longer than this (bytes) are not compared: minified or generated text.
const MAX_LINE: usize = 400;

/// Lines compared at most per edit, so that a long file full of the piece costs
/// milliseconds (the inline completion handler asks at every keystroke).
const MAX_COMPARED: usize = 200;

/// A piece of one line replaced by another.
#[derive(Debug, PartialEq)]
pub(crate) struct Replacement {
    pub old: String,
    pub new: String,
    /// The edited line as it was.
    pub line_before: String,
}

fn is_word(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_alphanumeric() || c == '_')
}

/// What a hunk that changed one line replaced: the tokens between the old and the new
/// line's common start and common end. `None` for other hunks, for a rename of one name
/// (followed by its own rules), and for an old piece under two characters (a digit, a
/// space: too common to mean the same change elsewhere).
pub(crate) fn replacement_in(hunk: &EditHunk) -> Option<Replacement> {
    let ([before], [after]) = (&hunk.removed[..], &hunk.added[..]) else { return None };
    let (a, b) = (tokens(before), tokens(after));
    let start = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let room = a.len().min(b.len()) - start;
    let end = a.iter().rev().zip(b.iter().rev()).take(room).take_while(|(x, y)| x == y).count();
    let old = a[start..a.len() - end].concat();
    let new = b[start..b.len() - end].concat();
    if old.trim().chars().count() < 2 || (is_word(&old) && is_word(&new)) {
        return None;
    }
    Some(Replacement { old, new, line_before: before.clone() })
}

/// Where `piece` first occurs in `line` without a name running on across its ends
/// (`i32` is not found in `1_i32`).
fn find_piece(line: &str, piece: &str) -> Option<usize> {
    let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    let (starts, ends) = (word(piece.chars().next()), word(piece.chars().next_back()));
    line.match_indices(piece).map(|(at, _)| at).find(|&at| {
        let (before, after) =
            (line[..at].chars().next_back(), line[at + piece.len()..].chars().next());
        let runs_on = (starts && word(before)) || (ends && word(after));
        !runs_on
    })
}

/// `r` made again in the lines of `text` (the document at `path`) that contain its old
/// piece and are at least [`MIN_SIMILARITY`] alike to the edited line as it was; the
/// lines `hunk` wrote are left alone.
pub(crate) fn repeated(path: &str, text: &str, hunk: &EditHunk, r: &Replacement) -> Vec<NextEdit> {
    let shape = r.line_before.trim();
    let shape_chars = shape.chars().count();
    let compared = std::cell::Cell::new(0);
    let alike = |line: &str| {
        // The distance is at least the difference in length: most lines end here.
        let n = line.chars().count();
        let longer = n.max(shape_chars) as f64;
        if n.abs_diff(shape_chars) as f64 > (1.0 - MIN_SIMILARITY) * longer
            || compared.get() >= MAX_COMPARED
        {
            return false;
        }
        compared.set(compared.get() + 1);
        edit_similarity(line, shape) >= MIN_SIMILARITY
    };
    let at_line = |line: &str| -> Vec<LineEdit> {
        let Some(start) = find_piece(line, &r.old) else { return Vec::new() };
        if line.len() > MAX_LINE || !alike(line.trim()) {
            return Vec::new();
        }
        vec![LineEdit { start, end: start + r.old.len(), text: r.new.clone() }]
    };
    let reason = format!(
        "the same change as at {path}:{}: `{}` → `{}`",
        hunk.start_line,
        r.old.trim(),
        r.new.trim()
    );
    let edited = hunk.start_line..hunk.start_line + hunk.added.len() as u32;
    let mut out = edits_in(path, (text, 1), &at_line, &reason);
    out.retain(|e| !edited.contains(&e.line));
    out
}

#[cfg(test)]
mod tests {
    use super::super::tests::hunk;
    use super::*;

    #[test]
    fn the_replaced_piece_is_what_lies_between_the_common_start_and_end() {
        let h = hunk(
            &["    return std::task::Poll::Pending;"],
            &["    return $crate::support::Poll::Pending;"],
        );
        let r = replacement_in(&h).expect("a replacement");
        assert_eq!((r.old.as_str(), r.new.as_str()), ("std::task", "$crate::support"));
        let removed = replacement_in(&hunk(&["for f in ${out[*]}; do"], &["for f in ${out}; do"]));
        assert_eq!(removed.map(|r| (r.old, r.new)), Some(("[*]".into(), String::new())));
        assert_eq!(
            replacement_in(&hunk(&["let a = old(x);"], &["let a = new(x);"])),
            None,
            "a rename"
        );
        assert_eq!(replacement_in(&hunk(&["x = 1"], &["x = 2"])), None, "one character");
        assert_eq!(replacement_in(&hunk(&["a", "b"], &["c", "d"])), None, "two lines");
        assert_eq!(replacement_in(&hunk(&[], &["new"])), None, "an added line");
    }

    #[test]
    fn the_change_follows_to_lines_shaped_like_the_edited_one() {
        let before = "fn a() {\n    let x = v.get(0).unwrap();\n    let y = v.get(1).unwrap();\n    log(\"v.unwrap() is fine\");\n    let z = w.get(2).unwrap();\n}\n";
        let h = EditHunk {
            start_line: 2,
            ..hunk(&["    let x = v.get(0).unwrap();"], &["    let x = v.get(0)?;"])
        };
        let text = before.replacen("v.get(0).unwrap()", "v.get(0)?", 1);
        let r = replacement_in(&h).expect("a replacement");
        assert_eq!((r.old.as_str(), r.new.as_str()), (".unwrap()", "?"));
        let found = repeated("a.rs", &text, &h, &r);
        let made: Vec<(u32, String)> = found
            .iter()
            .map(|e| {
                (
                    e.line,
                    format!("{}{}{}", &e.line_text[..e.start], e.new_text, &e.line_text[e.end..]),
                )
            })
            .collect();
        assert_eq!(
            made,
            [(3, "    let y = v.get(1)?;".to_string()), (5, "    let z = w.get(2)?;".to_string())],
            "not the edited line, nor the line of another shape"
        );
        assert!(found[0].reason.contains("a.rs:2"), "{}", found[0].reason);
    }

    #[test]
    fn a_piece_is_not_found_inside_a_longer_name() {
        assert_eq!(find_piece("let a = [1_i32, i32::MAX];", "i32"), Some(16));
        assert_eq!(find_piece("x.unwrap()", ".unwrap()"), Some(1));
        assert_eq!(find_piece("unwrap_or(x)", "unwrap"), None);
    }
}
