//! Expressions before the cursor: the call chain it continues, and what a recent
//! `let x = a.b()` bound.

use super::{ident_re, CallBinding};
use crate::{is_keyword, is_std_name};
use regex::Regex;
use std::sync::OnceLock;

/// Lines above the cursor a call chain is followed back.
pub(super) const CHAIN_LINES: u32 = 6;

/// The chain `text` ends in, if the cursor continues one: right after a `.`/`::`,
/// or on a blank line after an unfinished expression (`let x = a` + `.b()` above)
/// in languages whose statements end with `;`.
pub(super) fn chain_before(
    text: &str,
    semicolons: bool,
    lang: Option<&str>,
) -> Option<(String, Vec<String>)> {
    let code = text.trim_end();
    let typed_member = code.ends_with('.') || code.ends_with("::");
    if !typed_member {
        let cursor_line = &text[patois_types::line_start_at(text, text.len())..];
        if !semicolons
            || !cursor_line.trim().is_empty()
            || code.ends_with([';', '{', '}', ',', '(', '[', '='])
        {
            return None;
        }
    }
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut s = code.trim_end_matches(['.', ':']).trim_end();
    let mut members = Vec::new();
    loop {
        s = s.trim_end_matches('?').trim_end();
        if s.ends_with(')') {
            // Back over the argument list to its `(`.
            let mut depth = 0;
            let open = s.char_indices().rev().find_map(|(i, c)| {
                match c {
                    ')' => depth += 1,
                    '(' => depth -= 1,
                    _ => {}
                }
                (depth == 0).then_some(i)
            })?;
            s = s[..open].trim_end();
        }
        let start = s.trim_end_matches(is_ident).len();
        let name = &s[start..];
        if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) || members.len() > 8 {
            return None;
        }
        let rest = s[..start].trim_end();
        match rest.strip_suffix('.').or_else(|| rest.strip_suffix("::")) {
            Some(r) => {
                members.push(name.to_string());
                s = r.trim_end();
            }
            None => {
                let keyword = is_keyword(lang, name) && name != "self" && name != "this";
                // On a new line only `let x = a` + `.b()` continues; a bare `a` was a whole statement.
                if keyword || (!typed_member && members.is_empty() && !rest.ends_with('=')) {
                    return None;
                }
                members.reverse();
                return Some((name.to_string(), members));
            }
        }
    }
}

/// Lines above the cursor whose bindings count as just bound.
pub(super) const BOUND_LINES: u32 = 6;

pub(super) fn binding_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"^\s*(?:let\s+(?:mut\s+)?|const\s+|var\s+)?([a-z_]\w*)(?:\s*,\s*[a-z_]\w*)*\s*:?=\s*(.*)$").unwrap())
}

fn call_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"([A-Za-z_]\w*)\s*(?:::<[^>]*>)?\(").unwrap())
}

/// `let x = a.b(…).c()?;` → `x`, receiver `a`, method `c` (standard-library calls skipped).
pub(super) fn call_binding(line: &str, lang: Option<&str>) -> Option<CallBinding> {
    let c = binding_re().captures(line)?;
    let rhs = c[2]
        .trim_start_matches(['&', ' '])
        .trim_start_matches("mut ")
        .trim_start_matches("await ")
        .trim_start_matches("new ");
    let method = call_re()
        .captures_iter(rhs)
        .map(|m| m[1].to_string())
        .filter(|m| !is_std_name(lang, m) && !is_keyword(lang, m))
        .last()?;
    let first = ident_re().find(rhs)?;
    let after_first = rhs[first.end()..].trim_start();
    let receiver = (first.start() == 0
        && first.as_str() != method
        && (after_first.starts_with('.') || after_first.starts_with("::")))
    .then(|| first.as_str().to_string());
    Some(CallBinding { var: c[1].to_string(), receiver, method })
}
