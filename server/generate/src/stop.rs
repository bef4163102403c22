//! When a completion ends: one line or a block, decided from the syntax at the cursor.

use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Finish the current line.
    SingleLine,
    /// Fill an empty block: stop where the block's indentation ends.
    MultiLine,
    /// Prose (an explanation, an answer): only the end of the text or the token cap stops it.
    Prose,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    EndOfText,
    EndOfLine,
    EndOfBlock,
    MaxTokens,
    Cancelled,
    /// The completion only repeated the text after the cursor, so it was dropped.
    RepeatsSuffix,
    /// The model wrote one piece over and over; the text keeps its first writing.
    Looping,
    /// Decoding reached the deadline of the latency budget; the text is what was written.
    TimeLimit,
}

const BLOCK_KINDS: &[&str] = &[
    "block",
    "declaration_list",
    "field_declaration_list",
    "statement_block",
    "class_body",
    "enum_body",
    "interface_body",
    "object_type",
    "match_block",
    "literal_value",
    "field_declaration_list",
    "compound_statement",
];

/// Multi-line when the cursor sits on a blank line inside an empty block (a body
/// just opened with `{` or `:`), single-line otherwise. Uses tree-sitter where
/// the language is known: the smallest block-like node around the cursor must
/// hold nothing but whitespace and its delimiters.
pub fn decide_mode(path: &str, text: &str, cursor: usize) -> Mode {
    let cursor = cursor.min(text.len());
    let line_start = patois_types::line_start_at(text, cursor);
    let line_end = text[cursor..].find('\n').map(|i| cursor + i).unwrap_or(text.len());
    if !text[line_start..cursor].trim().is_empty() || !text[cursor..line_end].trim().is_empty() {
        return Mode::SingleLine;
    }
    let prev = text[..line_start].trim_end();
    let opener =
        prev.ends_with('{') || prev.ends_with(':') || prev.ends_with("=>") || prev.ends_with('(');
    if let Some(lang) = patois_syntax::language_for_path(Path::new(path)) {
        if let Some(tree) = patois_syntax::parse(lang, text) {
            let mut node = tree.root_node().descendant_for_byte_range(cursor, cursor);
            while let Some(n) = node {
                if BLOCK_KINDS.contains(&n.kind()) {
                    let inner = text[n.byte_range()]
                        .trim_matches(|c: char| c.is_whitespace() || "{}():".contains(c));
                    return if inner.is_empty() { Mode::MultiLine } else { Mode::SingleLine };
                }
                node = n.parent();
            }
        }
    }
    if opener {
        Mode::MultiLine
    } else {
        Mode::SingleLine
    }
}

fn indent_of(l: &str) -> usize {
    l.chars().take_while(|c| *c == ' ' || *c == '\t').count()
}

/// Where the completion text should end under `mode`, or because it loops, if it should
/// already: the byte length to keep and why.
pub fn check(
    mode: Mode,
    text: &str,
    cursor_indent: usize,
    max_lines: usize,
) -> Option<(usize, StopReason)> {
    mode_end(mode, text, cursor_indent, max_lines)
        .or_else(|| looping(text).map(|keep| (keep, StopReason::Looping)))
}

fn mode_end(
    mode: Mode,
    text: &str,
    cursor_indent: usize,
    max_lines: usize,
) -> Option<(usize, StopReason)> {
    match mode {
        Mode::SingleLine => {
            // A leading newline is allowed only when nothing else came yet.
            let start = text.len() - text.trim_start_matches(['\n', '\r']).len();
            text[start..]
                .find('\n')
                .filter(|_| !text[start..].trim().is_empty())
                .map(|i| (start + i, StopReason::EndOfLine))
        }
        Mode::MultiLine => {
            let mut offset: usize = 0;
            let mut depth: i64 = 0;
            for (n, line) in text.split_inclusive('\n').enumerate() {
                let complete = line.ends_with('\n');
                let body = line.trim_end_matches(['\n', '\r']);
                if !body.trim().is_empty() && n > 0 && indent_of(body) < cursor_indent && complete {
                    return Some((offset.saturating_sub(1), StopReason::EndOfBlock));
                }
                for ch in body.chars() {
                    match ch {
                        '{' | '(' | '[' => depth += 1,
                        '}' | ')' | ']' => depth -= 1,
                        _ => {}
                    }
                }
                if depth < 0 {
                    return Some((offset.saturating_sub(1), StopReason::EndOfBlock));
                }
                if n + 1 >= max_lines && complete {
                    return Some((offset + body.len(), StopReason::EndOfBlock));
                }
                offset += line.len();
            }
            None
        }
        Mode::Prose => None,
    }
}

/// Where a completion stuck in a loop should end: `text` ends with one piece (2 to 64
/// bytes, holding a letter, so runs like `0, 0, 0, 0` and `----` are left alone) written
/// four times in a row. Returns the length that keeps its first writing.
fn looping(text: &str) -> Option<usize> {
    const TIMES: usize = 4;
    let b = text.as_bytes();
    (2..=64.min(b.len() / TIMES)).find_map(|p| {
        let unit = &b[b.len() - p..];
        let repeated = (1..TIMES).all(|k| &b[b.len() - (k + 1) * p..b.len() - k * p] == unit);
        let keep = b.len() - (TIMES - 1) * p;
        (repeated && unit.iter().any(u8::is_ascii_alphabetic) && text.is_char_boundary(keep))
            .then_some(keep)
    })
}

/// Drops what the suffix already has: a completion equal to the start of the
/// suffix becomes empty; closing characters the line already ends with are cut.
pub fn trim_against_suffix(completion: &str, suffix: &str) -> (String, bool) {
    let c = completion.trim_end();
    if c.trim().is_empty() {
        return (String::new(), false);
    }
    if suffix.trim_start().starts_with(c.trim()) {
        return (String::new(), true);
    }
    let line_rest = suffix.split('\n').next().unwrap_or("").trim();
    if !line_rest.is_empty() && c.ends_with(line_rest) && !c.contains('\n') {
        return (c[..c.len() - line_rest.len()].to_string(), false);
    }
    (c.to_string(), false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_from_syntax() {
        let empty_body = "fn f() {\n    \n}\n";
        assert_eq!(decide_mode("a.rs", empty_body, 13), Mode::MultiLine);
        let mid_line = "fn f() {\n    let x = \n}\n";
        assert_eq!(decide_mode("a.rs", mid_line, 21), Mode::SingleLine);
        let full_body = "fn f() {\n    a();\n    \n    b();\n}\n";
        assert_eq!(decide_mode("a.rs", full_body, 22), Mode::SingleLine);
        let py = "def f():\n    \n";
        assert_eq!(decide_mode("a.py", py, 13), Mode::MultiLine);
    }

    #[test]
    fn stop_points() {
        assert_eq!(
            check(Mode::SingleLine, "x + 1;\n    y", 4, 20),
            Some((6, StopReason::EndOfLine))
        );
        assert_eq!(check(Mode::SingleLine, "x + 1;", 4, 20), None);
        let block = "    a();\n    b();\n}\nfn g() {}\n";
        assert_eq!(check(Mode::MultiLine, block, 4, 20), Some((17, StopReason::EndOfBlock)));
        assert_eq!(&block[..17], "    a();\n    b();");
        let looped = "x(ab)(ab)(ab)(ab)";
        assert_eq!(check(Mode::SingleLine, looped, 4, 20), Some((5, StopReason::Looping)));
    }

    #[test]
    fn loops_keep_their_first_writing() {
        let t = "x.unwrap_or(\"\").trim().unwrap_or(\"\").trim().unwrap_or(\"\").trim()\
                 .unwrap_or(\"\").trim()";
        assert_eq!(looping(t).map(|n| &t[..n]), Some("x.unwrap_or(\"\").trim()"));
        let newlines = r#"blob_id(b"hello\n\n\n\n"#;
        assert_eq!(looping(newlines).map(|n| &newlines[..n]), Some(r#"blob_id(b"hello\n"#));
        let lines = "a.push(1);\na.push(1);\na.push(1);\na.push(1);\n";
        assert_eq!(looping(lines), Some(11));
        // Three times is not a loop yet; numbers and rules are code.
        assert_eq!(looping("f(a); f(a); f(a);"), None);
        assert_eq!(looping("let zeros = [0, 0, 0, 0, 0, 0, 0, 0"), None);
        assert_eq!(looping("// ----------------"), None);
        assert_eq!(looping("é€é€é€é€"), None, "a letter is ASCII here; no panic on UTF-8");
    }

    #[test]
    fn suffix_repeats_are_dropped() {
        assert_eq!(trim_against_suffix("}", "\n}\n"), (String::new(), true));
        assert_eq!(trim_against_suffix("foo(a, b))", ")\n"), ("foo(a, b)".to_string(), false));
        assert_eq!(trim_against_suffix("bar()", "\n}\n"), ("bar()".to_string(), false));
    }
}
