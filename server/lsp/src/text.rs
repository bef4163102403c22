//! Positions: LSP line/character in the negotiated encoding ↔ byte offsets.

use tower_lsp_server::ls_types::{Position, Range, TextDocumentContentChangeEvent};

/// How `Position.character` counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    Utf16,
}

/// The byte offset of `pos` in `text`; positions past a line's end clamp to it.
pub fn offset(text: &str, pos: Position, enc: Encoding) -> usize {
    let mut start = 0;
    for _ in 0..pos.line {
        match text[start..].find('\n') {
            Some(i) => start += i + 1,
            None => return text.len(),
        }
    }
    let line_end = text[start..].find('\n').map(|i| start + i).unwrap_or(text.len());
    let line = &text[start..line_end];
    let want = pos.character as usize;
    match enc {
        Encoding::Utf8 => start + want.min(line.len()),
        Encoding::Utf16 => {
            let mut units = 0;
            for (i, c) in line.char_indices() {
                if units >= want {
                    return start + i;
                }
                units += c.len_utf16();
            }
            line_end
        }
    }
}

/// The position of byte offset `off` in `text`.
pub fn position(text: &str, off: usize, enc: Encoding) -> Position {
    let off = off.min(text.len());
    let line_start = text[..off].rfind('\n').map(|i| i + 1).unwrap_or(0);
    let line = text[..line_start].matches('\n').count() as u32;
    let col = match enc {
        Encoding::Utf8 => off - line_start,
        Encoding::Utf16 => text[line_start..off].chars().map(char::len_utf16).sum(),
    };
    Position::new(line, col as u32)
}

/// Applies an incremental (or full) change.
pub fn apply(text: &mut String, change: &TextDocumentContentChangeEvent, enc: Encoding) {
    match change.range {
        Some(Range { start, end }) => {
            let (s, e) = (offset(text, start, enc), offset(text, end, enc));
            text.replace_range(s..e.max(s), &change.text);
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
}
