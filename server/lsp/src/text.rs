//! Positions: LSP line/character in the negotiated encoding ↔ byte offsets.

use tower_lsp_server::ls_types::{Position, Range, TextDocumentContentChangeEvent};

/// How `Position.character` counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    Utf16,
}

/// The byte offset of `pos` in `text`. Positions past a line's end clamp to it, lines past
/// the end clamp to the end of the text, and a position inside a character (a UTF-8 byte
/// or UTF-16 unit in its middle) means the start of that character. Never panics.
pub fn offset(text: &str, pos: Position, enc: Encoding) -> usize {
    let mut start = 0;
    for _ in 0..pos.line {
        match line_break(text, start) {
            Some((i, len)) => start = i + len,
            None => return text.len(),
        }
    }
    let line_end = line_break(text, start).map_or(text.len(), |(i, _)| i);
    let line = &text[start..line_end];
    let want = pos.character as usize;
    match enc {
        Encoding::Utf8 => start + line.floor_char_boundary(want),
        Encoding::Utf16 => {
            let mut units = 0;
            for (i, c) in line.char_indices() {
                if units + c.len_utf16() > want {
                    return start + i;
                }
                units += c.len_utf16();
            }
            line_end
        }
    }
}

/// The first line break at or after `from`: its offset and length. LSP's line breaks are
/// `\n`, `\r\n` and `\r`.
fn line_break(text: &str, from: usize) -> Option<(usize, usize)> {
    let i = from + text[from..].find(['\n', '\r'])?;
    let len = if text[i..].starts_with("\r\n") { 2 } else { 1 };
    Some((i, len))
}

/// The position of byte offset `off` in `text` (an offset inside a character counts as
/// its start).
pub fn position(text: &str, off: usize, enc: Encoding) -> Position {
    let off = text.floor_char_boundary(off);
    let (mut line, mut line_start) = (0u32, 0);
    while let Some((i, len)) = line_break(text, line_start).filter(|(i, len)| i + len <= off) {
        line += 1;
        line_start = i + len;
    }
    let col = match enc {
        Encoding::Utf8 => off - line_start,
        Encoding::Utf16 => text[line_start..off].chars().map(char::len_utf16).sum(),
    };
    Position::new(line, col as u32)
}

/// Applies an incremental (or full) change. A reversed range is read
/// start-to-end, as VS Code's `Range` does.
pub fn apply(text: &mut String, change: &TextDocumentContentChangeEvent, enc: Encoding) {
    match change.range {
        Some(Range { start, end }) => {
            let (s, e) = (offset(text, start, enc), offset(text, end, enc));
            text.replace_range(s.min(e)..s.max(e), &change.text);
        }
        None => *text = change.text.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf16_and_utf8_columns_on_non_ascii_text() {
        let t = "a\nçé😀x\n";
        // 'x' is after ç(1 unit, 2 bytes) é(1, 2) 😀(2 units, 4 bytes).
        assert_eq!(offset(t, Position::new(1, 4), Encoding::Utf16), 2 + 8);
        assert_eq!(offset(t, Position::new(1, 8), Encoding::Utf8), 2 + 8);
        assert_eq!(position(t, 10, Encoding::Utf16), Position::new(1, 4));
        assert_eq!(position(t, 10, Encoding::Utf8), Position::new(1, 8));
        assert_eq!(offset(t, Position::new(1, 99), Encoding::Utf16), 11, "clamped to the line end");
        let mut s = t.to_string();
        let change = TextDocumentContentChangeEvent {
            range: Some(Range::new(Position::new(1, 2), Position::new(1, 4))),
            range_length: None,
            text: "!".into(),
        };
        apply(&mut s, &change, Encoding::Utf16);
        assert_eq!(s, "a\nçé!x\n");
    }

    #[test]
    fn crlf_and_cr_end_lines_and_line_ends_are_before_them() {
        let t = "ab\r\ncd\ref\n";
        assert_eq!(offset(t, Position::new(0, 9), Encoding::Utf16), 2, "before \\r\\n");
        assert_eq!(offset(t, Position::new(1, 1), Encoding::Utf16), 5);
        assert_eq!(offset(t, Position::new(2, 0), Encoding::Utf16), 7, "after a lone \\r");
        assert_eq!(position(t, 8, Encoding::Utf16), Position::new(2, 1));
        assert_eq!(position(t, 3, Encoding::Utf16), Position::new(0, 3), "inside \\r\\n");
    }

    #[test]
    fn positions_inside_a_character_mean_its_start() {
        let t = "é😀x";
        assert_eq!(offset(t, Position::new(0, 1), Encoding::Utf8), 0, "inside é");
        assert_eq!(offset(t, Position::new(0, 4), Encoding::Utf8), 2, "inside 😀");
        assert_eq!(offset(t, Position::new(0, 2), Encoding::Utf16), 2, "between 😀's units");
        assert_eq!(offset(t, Position::new(0, 3), Encoding::Utf16), 6);
        assert_eq!(offset(t, Position::new(7, 0), Encoding::Utf16), t.len(), "past the end");
        assert_eq!(position(t, 3, Encoding::Utf16), Position::new(0, 1));
        let mut s = t.to_string();
        let reversed = TextDocumentContentChangeEvent {
            range: Some(Range::new(Position::new(0, 3), Position::new(0, 1))),
            range_length: None,
            text: "-".into(),
        };
        apply(&mut s, &reversed, Encoding::Utf8);
        assert_eq!(s, "-😀x", "bytes 0..2: byte 3 is inside 😀 (its start, 2), byte 1 inside é");
    }
}
