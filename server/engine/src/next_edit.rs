//! Next edits by propagation, without the model: when the user's latest edit renamed an
//! identifier, the places that still use the old name; when it added or removed a
//! function's parameter, the calls that pass the old arguments; when it added a field to a
//! record type, the literals or constructor calls that must now set it; when it replaced
//! another piece of a line, the document's lines shaped like that one — in the document
//! and in the indexed files, each with the same change and a citation.

use crate::{lock, Engine, Error, Result};
use fields::{field_added, variant_added};
use patois_index::{ChunkHit, SymbolHit};
use patois_retrieve::{contains_word, word_positions, Citation, EditHunk};
use repeated::{repeated, replacement_in};
use serde::{Deserialize, Serialize};
use signature::{signature_change_around, signature_change_in, SignatureChange};
use std::path::Path;

mod fields;
mod repeated;
mod signature;

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

/// Which rule found a next edit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EditRule {
    /// An identifier renamed: its other uses.
    Rename,
    /// A function's parameters changed: its calls.
    Signature,
    /// A field added to a record type: the literals or constructor calls lacking it.
    Field,
    /// A variant added to an enum: the `match`es listing the variants.
    Variant,
    /// Another piece of a line replaced: the lines shaped like it.
    Repeated,
}

impl EditRule {
    pub fn as_str(self) -> &'static str {
        match self {
            EditRule::Rename => "rename",
            EditRule::Signature => "signature",
            EditRule::Field => "field",
            EditRule::Variant => "variant",
            EditRule::Repeated => "repeated",
        }
    }
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

/// One change on a line: replace bytes `start..end` with `text`.
#[derive(Debug, PartialEq)]
pub struct LineEdit {
    pub start: usize,
    pub end: usize,
    pub text: String,
}

/// The edits `on_line` finds in `text` (lines of `file` numbered from `first_line`).
fn edits_in(
    file: &str,
    (text, first_line): (&str, u32),
    on_line: &dyn Fn(&str) -> Vec<LineEdit>,
    reason: &str,
) -> Vec<NextEdit> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = first_line + i as u32;
        out.extend(on_line(line).into_iter().map(|e| NextEdit {
            path: file.to_string(),
            line: n,
            line_text: line.to_string(),
            start: e.start,
            end: e.end,
            new_text: e.text,
            reason: reason.to_string(),
            citation: Citation::lines(file, n, n),
        }));
    }
    out
}

impl Engine {
    /// Whether the change of `old` to `new` in `hunk` is a rename to follow through: made
    /// in code, and either where `new` is declared (a definition's name, a binding), or at
    /// a use of a name the repository declares (as a type where a type stands), to a name
    /// found nowhere else yet. A use changed to another existing name (`.Name` to
    /// `.DisplayName`) or a built-in one changed (`string` to `Completion`) changes that
    /// use only.
    fn is_a_rename(
        &self,
        path: &str,
        text: &str,
        hunk: &EditHunk,
        names: (&str, &str),
    ) -> Result<bool> {
        let (old, new) = names;
        let Some(tree) = patois_syntax::outline(Path::new(path), text).tree else {
            return Ok(false);
        };
        let lines = patois_syntax::Lines::new(text);
        let edited = hunk.start_line..hunk.start_line + hunk.added.len() as u32;
        let at: Vec<(usize, usize)> = edited
            .clone()
            .flat_map(|n| {
                let start = lines.start(n, text);
                let positions = word_positions(lines.text(n, text), new);
                positions.into_iter().map(move |p| (start + p, start + p + new.len()))
            })
            .filter(|&(s, e)| patois_syntax::is_code(&tree, s, e))
            .collect();
        if at.is_empty() {
            return Ok(false);
        }
        if at.iter().any(|&(s, e)| patois_syntax::is_declaration(&tree, text, s, e)) {
            return Ok(true);
        }
        let used_elsewhere = text
            .lines()
            .enumerate()
            .any(|(i, l)| !edited.contains(&(i as u32 + 1)) && contains_word(l, new));
        let definitions = |name: &str| self.index().symbols_named(name, 20).map_err(Error::index);
        // A type's place (`[]string`) is no use of a function of that name.
        let as_type = at.iter().any(|&(s, e)| patois_syntax::names_a_type(&tree, s, e));
        let resolves = |d: &SymbolHit| !as_type || d.kind.is_type();
        let old_declared_here = text.lines().enumerate().any(|(i, l)| {
            let start = lines.start(i as u32 + 1, text);
            word_positions(l, old).into_iter().any(|p| {
                patois_syntax::is_declaration(&tree, text, start + p, start + p + old.len())
            })
        });
        let old_defined = old_declared_here || definitions(old)?.iter().any(resolves);
        Ok(!used_elsewhere && definitions(new)?.is_empty() && old_defined)
    }

    /// The edits that follow the user's latest edit in `path` (see [`Engine::next_edits_by`]).
    pub fn next_edits(&self, path: &str) -> Result<Vec<NextEdit>> {
        Ok(self.next_edits_by(path)?.map(|(_, edits)| edits).unwrap_or_default())
    }

    /// The edits that follow the user's latest edit in `path` that is a rename (see
    /// [`rename_in`]), a function's signature change (see [`signature_change_in`]), a
    /// field or variant added (see [`field_added`]) or another piece of a line replaced
    /// (see [`replacement_in`]), with the rule that found them; `None` when no rule applies.
    pub fn next_edits_by(&self, path: &str) -> Result<Option<(EditRule, Vec<NextEdit>)>> {
        let text = lock(&self.docs).get(path).map(|d| d.text.clone());
        let Some(text) = text else { return Ok(None) };
        for hunk in self.recent_hunks().iter().filter(|h| h.path == path) {
            let found = |rule, edits: Result<Vec<NextEdit>>| Ok(Some((rule, edits?)));
            if let Some(names) = rename_in(hunk) {
                return match self.is_a_rename(path, &text, hunk, (&names.0, &names.1))? {
                    true => found(EditRule::Rename, self.renamed(path, &text, hunk, names)),
                    false => Ok(None),
                };
            }
            let change = signature_change_in(hunk).or_else(|| signature_change_around(&text, hunk));
            if let Some(change) = change {
                let reason = format!("{} at {path}:{}", change.describe(), hunk.start_line);
                return found(
                    EditRule::Signature,
                    self.calls_changed(path, &text, &change, &reason),
                );
            }
            if let Some(decl) = field_added(path, &text, hunk) {
                return found(EditRule::Field, self.field_set(path, &text, hunk, &decl));
            }
            if let Some(decl) = variant_added(path, &text, hunk) {
                return found(EditRule::Variant, self.variant_handled(path, &text, hunk, &decl));
            }
            if let Some(r) = replacement_in(hunk) {
                return found(EditRule::Repeated, Ok(finished(repeated(path, &text, hunk, &r))));
            }
        }
        Ok(None)
    }

    /// The old name's other uses, in the document, then in the other indexed files.
    fn renamed(
        &self,
        path: &str,
        text: &str,
        hunk: &EditHunk,
        (old, new): (String, String),
    ) -> Result<Vec<NextEdit>> {
        let reason = format!("`{old}` was renamed to `{new}` at {path}:{}", hunk.start_line);
        let uses = |line: &str| -> Vec<LineEdit> {
            let at = word_positions(line, &old);
            at.map(|start| LineEdit { start, end: start + old.len(), text: new.clone() }).collect()
        };
        // A name the index defines is the same thing wherever it is used; any other (a
        // local, a parameter) only within the top-level item the edit is in.
        let defined = !self.index().symbols_named(&old, 1).map_err(Error::index)?.is_empty();
        let (first, region) = match defined {
            true => (1, text),
            false => patois_syntax::top_level_item(text, hunk.start_line),
        };
        let mut out = edits_in(path, (region, first), &uses, &reason);
        if defined {
            for h in &self.code_elsewhere(path, &old)? {
                out.extend(edits_in(&h.path, (&h.text, h.start_line), &uses, &reason));
            }
        }
        Ok(finished(out))
    }

    /// The calls of a function whose parameters changed, in the document, then in the
    /// other indexed files when the index defines no other function of that name.
    fn calls_changed(
        &self,
        path: &str,
        text: &str,
        change: &SignatureChange,
        reason: &str,
    ) -> Result<Vec<NextEdit>> {
        let calls = |line: &str| change.calls_in(line);
        let mut out = edits_in(path, (text, 1), &calls, reason);
        let definitions = self.index().symbols_named(&change.name, 2).map_err(Error::index)?;
        if definitions.len() <= 1 {
            for h in &self.code_elsewhere(path, &change.name)? {
                out.extend(edits_in(&h.path, (&h.text, h.start_line), &calls, reason));
            }
        }
        Ok(finished(out))
    }

    /// Indexed chunks of code outside `path` that use `name` (a changelog's mention of it
    /// stays as it was).
    fn code_elsewhere(&self, path: &str, name: &str) -> Result<Vec<ChunkHit>> {
        let keep = |h: &ChunkHit| {
            h.path != path
                && patois_syntax::language_for_path(Path::new(&h.path)).is_some()
                && contains_word(&h.text, name)
        };
        self.index().search_chunks(name, MAX_EDITS, &keep).map_err(Error::index)
    }
}

/// `edits` without repeats (chunks may overlap), at most [`MAX_EDITS`].
fn finished(mut edits: Vec<NextEdit>) -> Vec<NextEdit> {
    edits.dedup_by(|a, b| (&a.path, a.line, a.start) == (&b.path, b.line, b.start));
    edits.truncate(MAX_EDITS);
    edits
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hunk of `a.rs` at line 3.
    pub(super) fn hunk(removed: &[&str], added: &[&str]) -> EditHunk {
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
