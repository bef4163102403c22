//! Finishing a line the document already has: when what the user has typed on the cursor's
//! line begins other lines of the same document and they all go on the same way, the rest
//! of that line is what the user is most likely typing (a repeated call, a sibling field,
//! an import beside another); failing that, when enough is typed, another file's lines.
//! No model runs; cited with the line it comes from.

use crate::Citation;
use patois_index::{Index, Result};

/// The rest of the cursor's line, as another line of the document has it.
#[derive(Debug, Clone, PartialEq)]
pub struct MatchingLine {
    /// The text to insert at the cursor.
    pub rest: String,
    /// The nearest line of the document that has it.
    pub citation: Citation,
}

/// Lines longer than this are not compared (generated or minified text).
const MAX_LINE_CHARS: usize = 400;
/// A document with more lines than this is not searched: a keystroke must stay cheap.
const MAX_LINES: usize = 20_000;
/// Typed text shorter than this is not looked up outside the document: across a
/// repository, a short beginning goes on in too many ways.
const MIN_TYPED_ELSEWHERE: usize = 10;
/// Indexed chunks searched for lines beginning as the typed text does.
const CHUNKS_SEARCHED: usize = 20;

/// What the lines beginning with the typed text say, each found at an `L`.
enum Lines<'a, L> {
    /// None begins so.
    None,
    /// They go on differently.
    Several,
    /// They are all this line; where the first one was met.
    One(&'a str, L),
}

impl<'a, L> Lines<'a, L> {
    /// Takes in `line` (trimmed), found at `at`, when it begins with `typed` and is longer.
    fn add(&mut self, typed: &str, line: &'a str, at: L) {
        if line.len() > MAX_LINE_CHARS || line.len() <= typed.len() || !line.starts_with(typed) {
            return;
        }
        match self {
            Lines::None => *self = Lines::One(line, at),
            Lines::One(one, _) if *one == line => {}
            _ => *self = Lines::Several,
        }
    }
}

/// The rest of the cursor's line at `cursor` in `text` (the document at `path`), when the
/// text typed on it (from its first non-blank character) begins other lines of the
/// document, longer than it, and all of those lines are the same (trimmed); when no line
/// of the document begins so and at least [`MIN_TYPED_ELSEWHERE`] characters are typed,
/// the same asked of the lines of the indexed chunks of other files most like the typed
/// text. Text after the cursor on the line must end the found line; it is not inserted
/// again. Cited: the document's nearest such line above the cursor (else below), or the
/// best-ranked chunk's.
pub fn matching_line(
    index: &Index,
    path: &str,
    text: &str,
    cursor: usize,
) -> Result<Option<MatchingLine>> {
    let (cursor, line_start, line_end) = crate::cursor::cursor_line(text, cursor);
    let typed = text[line_start..cursor].trim_start();
    let after = text[cursor..line_end].trim();
    if typed.is_empty() || typed.len() > MAX_LINE_CHARS {
        return Ok(None);
    }
    let cursor_row = text[..line_start].matches('\n').count();
    let rows: Vec<&str> = text.lines().take(MAX_LINES).collect();
    let nearest_first = (0..cursor_row.min(rows.len())).rev().chain(cursor_row + 1..rows.len());
    let mut in_document = Lines::None;
    for row in nearest_first {
        in_document.add(typed, rows[row].trim(), row as u32 + 1);
    }
    let (line, cited_path, n) = match in_document {
        Lines::One(line, n) => (line.to_string(), path.to_string(), n),
        Lines::Several => return Ok(None),
        Lines::None if typed.len() < MIN_TYPED_ELSEWHERE => return Ok(None),
        Lines::None => {
            let hits = index.search_chunks(typed, CHUNKS_SEARCHED, &|h| h.path != path)?;
            let mut elsewhere = Lines::None;
            for hit in &hits {
                for (i, line) in hit.text.lines().enumerate() {
                    elsewhere.add(typed, line.trim(), (&hit.path, hit.start_line + i as u32));
                }
            }
            let Lines::One(line, (cited, n)) = elsewhere else { return Ok(None) };
            (line.to_string(), cited.clone(), n)
        }
    };
    let Some(rest) = line[typed.len()..].strip_suffix(after).map(str::trim_end) else {
        return Ok(None);
    };
    if rest.is_empty() {
        return Ok(None);
    }
    let citation =
        Citation { path: cited_path, start_line: n, end_line: n, commit: None, pr: None };
    Ok(Some(MatchingLine { rest: rest.to_string(), citation }))
}

#[cfg(test)]
mod tests {
    use super::{matching_line, MatchingLine};
    use crate::testing::index;
    use patois_index::Index;

    /// The match at the `|` in `doc`, with `ix` as the index.
    fn at_bar(ix: &Index, path: &str, doc: &str) -> Option<MatchingLine> {
        let cursor = doc.find('|').expect("a cursor mark");
        matching_line(ix, path, &doc.replacen('|', "", 1), cursor).unwrap()
    }

    fn rest_at_bar(ix: &Index, doc: &str) -> Option<String> {
        at_bar(ix, "src/a.rs", doc).map(|m| m.rest)
    }

    #[test]
    fn the_line_the_typed_text_begins_is_finished_and_the_nearest_above_cited() {
        let (_d, ix) = index(&[]);
        let doc = "use std::collections::HashMap;\nuse std::fmt;\nuse std::collections::HashMap;\n\
                   fn f() {}\nuse std::coll|\nuse std::collections::HashMap;\n";
        let m = at_bar(&ix, "src/a.rs", doc).expect("a match");
        assert_eq!(m.rest, "ections::HashMap;");
        assert_eq!((m.citation.path.as_str(), m.citation.start_line), ("src/a.rs", 3));
    }

    #[test]
    fn lines_that_go_on_differently_give_nothing() {
        let (_d, ix) = index(&[]);
        assert_eq!(rest_at_bar(&ix, "    self.a = a;\n    self.b = b;\n    self.|\n"), None);
        let typed_on = "    self.a = a;\n    self.b = b;\n    self.a|\n";
        assert_eq!(rest_at_bar(&ix, typed_on), Some(" = a;".into()));
    }

    #[test]
    fn nothing_typed_nothing_found_or_nothing_left_gives_nothing() {
        let (_d, ix) = index(&[]);
        assert_eq!(rest_at_bar(&ix, "x = 1\n    |\n"), None, "nothing typed");
        assert_eq!(rest_at_bar(&ix, "x = 1\ny|\n"), None, "no line begins so");
        assert_eq!(rest_at_bar(&ix, "x = 1\nx = 1|\n"), None, "the line is typed");
    }

    #[test]
    fn text_after_the_cursor_must_end_the_line_found_and_is_not_repeated() {
        let (_d, ix) = index(&[]);
        assert_eq!(rest_at_bar(&ix, "call(alpha, beta)\ncall(al|)\n"), Some("pha, beta".into()));
        assert_eq!(rest_at_bar(&ix, "call(alpha, beta)\ncall(al|]\n"), None);
    }

    #[test]
    fn a_long_beginning_no_line_of_the_document_has_is_looked_up_in_other_files() {
        let other = "fn setup() {\n    let config = Config::load(&path)?;\n}\n";
        let (_d, ix) = index(&[("src/other.rs", other)]);
        let m = at_bar(&ix, "src/a.rs", "fn f() {\n    let config = Con|\n}\n").expect("a match");
        assert_eq!(m.rest, "fig::load(&path)?;");
        assert_eq!((m.citation.path.as_str(), m.citation.start_line), ("src/other.rs", 2));
        let short = "fn f() {\n    let con|\n}\n";
        assert_eq!(rest_at_bar(&ix, short), None, "too short a beginning for elsewhere");
    }

    #[test]
    fn the_document_decides_before_other_files() {
        let other = "    let config = Config::load(&path)?;\n";
        let (_d, ix) = index(&[("src/other.rs", other)]);
        let doc = "    let config = Config::new();\n    let config = Con|\n";
        assert_eq!(rest_at_bar(&ix, doc), Some("fig::new();".into()));
        let ambiguous = "    let config = Config::new();\n    let config = Config::default();\n\
                         let config = Con|\n";
        assert_eq!(rest_at_bar(&ix, ambiguous), None, "the document has it both ways");
    }
}
