//! Continuing code that already exists: when the lines above the cursor appear together
//! elsewhere in the repository, the line that follows them there is what the user is most
//! likely typing (moving, splitting or repeating code). Cited like every other source.

use crate::Citation;
use patois_index::{Index, Result};

/// A line that follows the cursor's two previous lines elsewhere in the repository.
#[derive(Debug, Clone, PartialEq)]
pub struct Continuation {
    /// The line, trimmed (the cursor's line holds the indentation).
    pub line: String,
    /// The lines after it there up to the end of its block (the first line indented less),
    /// indented relative to it: what follows when the cursor sits in an empty body. Empty
    /// when the block does not end within the indexed chunk.
    pub rest: Vec<String>,
    /// Where the two lines and the line after them are.
    pub citation: Citation,
}

/// Lines of a block taken along at most.
const MAX_REST_LINES: usize = 30;

fn indentation(line: &str) -> &str {
    &line[..line.len() - line.trim_start().len()]
}

/// The lines after `lines[at]` up to the end of its block, relative to its indentation;
/// empty when the block does not end within `lines`.
fn rest_of_block(lines: &[&str], at: usize) -> Vec<String> {
    let base = indentation(lines[at]);
    let mut rest = Vec::new();
    for line in &lines[at + 1..] {
        if line.trim().is_empty() {
            rest.push(String::new());
            continue;
        }
        // Indented less (or otherwise): the block has ended.
        if !line.starts_with(base) {
            while rest.last().is_some_and(String::is_empty) {
                rest.pop();
            }
            return rest;
        }
        if rest.len() == MAX_REST_LINES {
            break;
        }
        rest.push(line[base.len()..].trim_end().to_string());
    }
    Vec::new()
}

/// Two lines shorter than this together say too little to be continued from elsewhere.
const MIN_CONTEXT_CHARS: usize = 24;
/// One line above the cursor this long, found elsewhere, is continued alone.
const ONE_LINE_MIN_CHARS: usize = 30;
/// A shorter one (down to this) only where every place it appears continues the same way.
const ONE_LINE_UNANIMOUS_CHARS: usize = 16;

/// The continuation at `cursor` in `text` (the document at `path`), when the cursor is on a
/// line holding only indentation and the two nearest non-empty lines above it (trimmed) are
/// found together in an indexed chunk, or the nearest alone when it is long (or, shorter,
/// where every place it appears continues the same way). A candidate
/// equal to the next non-empty line below the cursor is not offered (the user has it).
/// The rest of the block it starts there comes along (see [`Continuation::rest`]).
pub fn continuation(
    index: &Index,
    path: &str,
    text: &str,
    cursor: usize,
) -> Result<Option<Continuation>> {
    let (_, line_start, line_end) = crate::cursor::cursor_line(text, cursor);
    if !text[line_start..line_end].trim().is_empty() {
        return Ok(None);
    }
    let mut above = text[..line_start].lines().rev().map(str::trim).filter(|l| !l.is_empty());
    let (Some(last), Some(before)) = (above.next(), above.next()) else { return Ok(None) };
    if last.len() + before.len() < MIN_CONTEXT_CHARS || !has_word(last) {
        return Ok(None);
    }
    let below = text[line_end..].lines().map(str::trim).find(|l| !l.is_empty());
    let cursor_line = text[..line_start].matches('\n').count() as u32 + 1;
    let query = format!("{before}\n{last}");
    // Candidates: (the next line, where, how many lines above matched, how often seen, the
    // rest of its block).
    let mut found: Vec<(String, Citation, u8, usize, Vec<String>)> = Vec::new();
    for hit in index.search_chunks(&query, 20, &|_| true)? {
        let raw: Vec<&str> = hit.text.lines().collect();
        let lines: Vec<(u32, &str)> = raw
            .iter()
            .enumerate()
            .map(|(i, l)| (hit.start_line + i as u32, l.trim()))
            .filter(|(_, l)| !l.is_empty())
            .collect();
        for (i, &(n, next)) in lines.iter().enumerate().skip(1) {
            let (m, l) = lines[i - 1];
            // The document's own lines around the cursor are not "elsewhere".
            let here = hit.path == path && n.abs_diff(cursor_line) <= 2;
            if l != last || here || Some(next) == below || !has_word(next) {
                continue;
            }
            let two = i >= 2 && lines[i - 2].1 == before;
            if !two && last.len() < ONE_LINE_UNANIMOUS_CHARS {
                continue;
            }
            let first = if two { lines[i - 2].0 } else { m };
            let strength = if two { 2 } else { 1 };
            match found.iter_mut().find(|c| c.0 == next && c.2 == strength) {
                Some(c) => c.3 += 1,
                None => {
                    let citation = Citation {
                        path: hit.path.clone(),
                        start_line: first,
                        end_line: n,
                        commit: None,
                        pr: None,
                    };
                    let rest = rest_of_block(&raw, (n - hit.start_line) as usize);
                    found.push((next.to_string(), citation, strength, 1, rest));
                }
            }
        }
    }
    // Two matching lines beat one; then the line seen most often; then the best-ranked hit.
    let one_line_ways = found.iter().filter(|c| c.2 == 1).count();
    let best = found.into_iter().enumerate().max_by_key(|(i, c)| (c.2, c.3, usize::MAX - i));
    let best =
        best.filter(|(_, c)| c.2 == 2 || last.len() >= ONE_LINE_MIN_CHARS || one_line_ways == 1);
    Ok(best.map(|(_, (line, citation, _, _, rest))| Continuation { line, rest, citation }))
}

/// Whether a line has a word in it (not only closing brackets and punctuation).
fn has_word(line: &str) -> bool {
    line.chars().any(char::is_alphanumeric)
}

#[cfg(test)]
mod tests {
    use super::continuation;
    use crate::testing::index;

    const OLD: &str = "pub fn load(path: &Path) -> Result<Config> {\n    let text = \
                       std::fs::read_to_string(path)?;\n    let config: Config = \
                       toml::from_str(&text)?;\n    config.check()?;\n    Ok(config)\n}\n";

    #[test]
    fn the_line_after_the_same_two_lines_elsewhere_is_offered_with_its_place() {
        let (_d, ix) = index(&[("src/old.rs", OLD)]);
        let doc = "fn reload(path: &Path) -> Result<Config> {\n    let text = \
                   std::fs::read_to_string(path)?;\n    let config: Config = \
                   toml::from_str(&text)?;\n    \n}\n";
        let cursor = doc.find("    \n}").unwrap() + 4;
        let c = continuation(&ix, "src/new.rs", doc, cursor).unwrap().expect("a continuation");
        assert_eq!(c.line, "config.check()?;");
        assert_eq!((c.citation.path.as_str(), c.citation.start_line), ("src/old.rs", 2));
        assert_eq!(c.citation.end_line, 4);
        assert_eq!(c.rest, ["Ok(config)"], "the rest of the block, up to its closing brace");
    }

    #[test]
    fn the_rest_of_a_block_keeps_its_inner_indentation_and_blank_lines() {
        let lines = ["fn a() {", "    if x {", "        y();", "", "    }", "    z();", "}", "w"];
        assert_eq!(super::rest_of_block(&lines, 1), ["    y();", "", "}", "z();"]);
        let unfinished = ["fn a() {", "    b();", "    c();"];
        assert!(
            super::rest_of_block(&unfinished, 1).is_empty(),
            "the block goes on past the chunk"
        );
    }

    #[test]
    fn nothing_when_the_line_is_typed_short_context_or_already_below() {
        let (_d, ix) = index(&[("src/old.rs", OLD)]);
        let doc = "    let text = std::fs::read_to_string(path)?;\n    let config: Config = \
                   toml::from_str(&text)?;\n    con\n";
        let typing = doc.len() - 1;
        assert_eq!(continuation(&ix, "src/new.rs", doc, typing).unwrap(), None);
        let short = "    x\n    Ok(config)\n    \n";
        assert_eq!(continuation(&ix, "src/new.rs", short, short.len() - 1).unwrap(), None);
        let below = "    let text = std::fs::read_to_string(path)?;\n    let config: Config = \
                     toml::from_str(&text)?;\n    \n    config.check()?;\n";
        let at = below.find("    \n").unwrap() + 4;
        assert_eq!(continuation(&ix, "src/new.rs", below, at).unwrap(), None);
    }

    #[test]
    fn the_most_common_continuation_wins_and_a_long_line_is_continued_alone() {
        let twice = "fn a() {\n    let rows = table.rows_matching(&query, limit)?;\n    \
                     rows.sort();\n}\nfn b() {\n    let rows = table.rows_matching(&query, \
                     limit)?;\n    rows.sort();\n}\n";
        let once = "fn c() {\n    let rows = table.rows_matching(&query, limit)?;\n    \
                    rows.reverse();\n}\n";
        let plain = "fn e() {\n    let total = 0;\n    finish(total);\n}\n";
        let (_d, ix) = index(&[("src/a.rs", twice), ("src/c.rs", once), ("src/e.rs", plain)]);
        let doc = "fn d() {\n    let rows = table.rows_matching(&query, limit)?;\n    \n}\n";
        let cursor = doc.find("    \n}").unwrap() + 4;
        let c = continuation(&ix, "src/d.rs", doc, cursor).unwrap().expect("a continuation");
        assert_eq!(c.line, "rows.sort();");
        assert_eq!(c.citation.path, "src/a.rs");
        // Only the long line matches: it is continued alone.
        let alone = "fn g() {\n    let unrelated = 5u32;\n    \
                     let rows = table.rows_matching(&query, limit)?;\n    \n}\n";
        let at = alone.find("    \n}").unwrap() + 4;
        let c = continuation(&ix, "src/g.rs", alone, at).unwrap().expect("a continuation");
        assert_eq!(c.line, "rows.sort();");
        // A shorter line alone is continued only where it always continues the same way.
        let (_d2, ix2) =
            index(&[("src/h.rs", "fn h() {\n    let v = x.collect();\n    v.sort();\n}\n")]);
        let one_way = "fn k() {\n    let unrelated = 5u32;\n    let v = x.collect();\n    \n}\n";
        let at = one_way.find("    \n}").unwrap() + 4;
        let c = continuation(&ix2, "src/k.rs", one_way, at).unwrap().expect("one way");
        assert_eq!(c.line, "v.sort();");
        let (_d3, ix3) = index(&[
            ("src/h.rs", "fn h() {\n    let v = x.collect();\n    v.sort();\n}\n"),
            ("src/i.rs", "fn i() {\n    let v = x.collect();\n    v.dedup();\n}\n"),
        ]);
        assert_eq!(continuation(&ix3, "src/k.rs", one_way, at).unwrap(), None, "two ways");
        // A short line alone says too little.
        let short = "fn f() {\n    let unrelated = 5u32;\n    let total = 0;\n    \n}\n";
        let at = short.find("    \n}").unwrap() + 4;
        assert_eq!(continuation(&ix, "src/f.rs", short, at).unwrap(), None);
    }
}
