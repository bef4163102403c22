//! A field added to a record type: the Rust struct literals that do not set it yet (they
//! no longer compile) get it, as rust-analyzer's "fill struct fields" writes it (`field`
//! when a binding of that name is in scope, else its type's empty value, `todo!()` when
//! the type does not tell one); a Python dataclass's
//! constructor calls get the new argument, as after a signature change. A variant added
//! to a Rust enum: the `match`es listing its variants one by one get an arm
//! (`Enum::New => todo!(),`, as "fill match arms" writes it).

use super::signature::{ParamChange, SignatureChange};
use super::{finished, NextEdit};
use crate::{Engine, Error, Result};
use patois_index::ChunkHit;
use patois_retrieve::{word_positions, Citation, EditHunk};
use patois_syntax::{FieldDecl, FieldInsert, RecordKind, VariantDecl};
use std::path::Path;

/// Added lines read for a new field; a longer hunk is new code, not a field.
const MAX_ADDED: usize = 5;

/// The identifier `line` starts with (after indentation) and the text after it.
fn leading_name(line: &str) -> Option<(&str, &str)> {
    let t = line.trim_start();
    let end = t.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(t.len());
    (end > 0 && !t.starts_with(|c: char| c.is_ascii_digit())).then(|| (&t[..end], &t[end..]))
}

/// Whether `line` may declare a field (`name: T`, `pub name: T`): a text test that spares
/// a keystroke's edit the parse.
fn may_declare_field(line: &str) -> bool {
    let mut rest = line.trim_start();
    if let Some(after) = rest.strip_prefix("pub") {
        rest = after.trim_start();
        if rest.starts_with('(') {
            rest = rest.split_once(')').map_or("", |(_, r)| r);
        }
    }
    leading_name(rest).is_some_and(|(_, after)| {
        let after = after.trim_start();
        after.starts_with(':') && !after.starts_with("::")
    })
}

/// Whether `line` may declare an enum variant (`Name`, `Name,`, `Name(T)`, `Name { .. }`,
/// `Name = 1`).
fn may_declare_variant(line: &str) -> bool {
    leading_name(line).is_some_and(|(name, after)| {
        let after = after.trim_start();
        name.starts_with(|c: char| c.is_uppercase())
            && (after.is_empty() || after.starts_with([',', '(', '{', '=']))
    })
}

/// What an added line of `hunk` declares that no removed line names: `looks_like` tells
/// the lines worth parsing, `declared_at` parses `text` (the document after the hunk) at a
/// line, `name` is the declared name.
fn declared_in<T>(
    text: &str,
    hunk: &EditHunk,
    looks_like: fn(&str) -> bool,
    declared_at: impl Fn(&str, u32) -> Option<T>,
    name: fn(&T) -> &str,
) -> Option<T> {
    if hunk.added.is_empty() || hunk.added.len() > MAX_ADDED {
        return None;
    }
    (0..hunk.added.len() as u32).filter(|&i| looks_like(&hunk.added[i as usize])).find_map(|i| {
        let decl = declared_at(text, hunk.start_line + i)?;
        let known = hunk.removed.iter().any(|l| word_positions(l, name(&decl)).next().is_some());
        (!known).then_some(decl)
    })
}

/// The field the hunk added to a record type in `text` (the document after it).
pub fn field_added(path: &str, text: &str, hunk: &EditHunk) -> Option<FieldDecl> {
    let at = |text: &str, line| patois_syntax::field_declared_at(Path::new(path), text, line);
    declared_in(text, hunk, may_declare_field, at, |d| &d.field)
}

/// The variant the hunk added to a Rust enum in `text` (the document after it).
pub fn variant_added(path: &str, text: &str, hunk: &EditHunk) -> Option<VariantDecl> {
    let at = |text: &str, line| patois_syntax::variant_declared_at(Path::new(path), text, line);
    declared_in(text, hunk, may_declare_variant, at, |d| &d.variant)
}

impl Engine {
    /// The `match`es over the enum that must now handle the new variant, in the document,
    /// then in indexed code when no other type has the enum's name.
    pub(super) fn variant_handled(
        &self,
        path: &str,
        text: &str,
        hunk: &EditHunk,
        decl: &VariantDecl,
    ) -> Result<Vec<NextEdit>> {
        let reason = format!(
            "`{}` gained a variant `{}` at {path}:{}",
            decl.enum_name, decl.variant, hunk.start_line
        );
        let find =
            |file: &str, text: &str| patois_syntax::matches_lacking(Path::new(file), text, decl);
        self.insertions(path, text, &decl.enum_name, &find, &reason)
    }

    /// The insertions `find` makes in the document, then in the other indexed files that
    /// use the type `name`, as edits.
    fn insertions(
        &self,
        path: &str,
        text: &str,
        name: &str,
        find: &dyn Fn(&str, &str) -> Vec<FieldInsert>,
        reason: &str,
    ) -> Result<Vec<NextEdit>> {
        let mut out = as_edits(path, text, find(path, text), reason);
        for file in &self.files_elsewhere(path, name)? {
            let text = self.file_from_chunks(file)?;
            out.extend(as_edits(file, &text, find(file, &text), reason));
        }
        Ok(finished(out))
    }

    /// Indexed code files other than `path` that use the type `name`, when no other type
    /// has that name (`Handle`, `Builder`), else none.
    fn files_elsewhere(&self, path: &str, name: &str) -> Result<Vec<String>> {
        let types = self.index().symbols_named(name, 8).map_err(Error::index)?;
        if types.iter().filter(|t| t.kind.is_type()).count() > 1 {
            return Ok(Vec::new());
        }
        let mut files: Vec<String> = Vec::new();
        for h in self.code_elsewhere(path, name)? {
            if !files.contains(&h.path) {
                files.push(h.path);
            }
        }
        Ok(files)
    }

    /// A file's text as the index holds it, whole: a literal or a `match` may span chunks.
    fn file_from_chunks(&self, file: &str) -> Result<String> {
        Ok(stitched(&self.index().chunks_in_file(file).map_err(Error::index)?))
    }

    /// The places a new field must be set: struct literals (Rust) or constructor calls
    /// (dataclass, when every field is required), in the document and in indexed code.
    pub(super) fn field_set(
        &self,
        path: &str,
        text: &str,
        hunk: &EditHunk,
        decl: &FieldDecl,
    ) -> Result<Vec<NextEdit>> {
        let reason = format!(
            "`{}` gained a field `{}` at {path}:{}",
            decl.type_name, decl.field, hunk.start_line
        );
        match decl.kind {
            RecordKind::Dataclass if decl.any_default => Ok(Vec::new()),
            RecordKind::Dataclass => {
                let change = SignatureChange {
                    name: decl.type_name.clone(),
                    old_arity: decl.fields - 1,
                    change: ParamChange::Added { at: decl.position, argument: decl.field.clone() },
                };
                self.calls_changed(path, text, &change, &reason)
            }
            RecordKind::RustStruct => {
                let find = |file: &str, text: &str| {
                    patois_syntax::literals_lacking(Path::new(file), text, decl)
                };
                self.insertions(path, text, &decl.type_name, &find, &reason)
            }
        }
    }
}

/// `inserts` into `text` (the whole of `file`) as edits.
fn as_edits(file: &str, text: &str, inserts: Vec<FieldInsert>, reason: &str) -> Vec<NextEdit> {
    let lines: Vec<&str> = text.split('\n').collect();
    inserts
        .into_iter()
        .filter_map(|f| {
            let line_text = lines.get(f.line as usize - 1)?.to_string();
            Some(NextEdit {
                path: file.to_string(),
                line: f.line,
                line_text,
                start: f.at,
                end: f.at,
                new_text: f.text,
                reason: reason.to_string(),
                citation: Citation::lines(file, f.line, f.line),
            })
        })
        .collect()
}

/// A file's text put back together from its chunks, each at its lines (a chunk's first
/// line lacks its indentation; lines no chunk holds are empty).
fn stitched(chunks: &[ChunkHit]) -> String {
    let mut lines: Vec<String> = Vec::new();
    for c in chunks {
        for (i, line) in c.text.split('\n').enumerate() {
            let at = (c.start_line as usize).saturating_sub(1) + i;
            if lines.len() <= at {
                lines.resize(at + 1, String::new());
            }
            lines[at].push_str(line);
        }
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_lines_that_look_like_declarations_are_parsed() {
        for field in ["    pub len: usize,", "  name: str", "    pub(crate) at: u8,"] {
            assert!(may_declare_field(field), "{field}");
        }
        for other in ["    let x: u8 = 1;", "    Store::new()", "    // a: b", "    x = 1"] {
            assert!(!may_declare_field(other), "{other}");
        }
        for variant in ["    Drop { at: usize },", "    Link(PathBuf),", "    Clear,", "    A = 1,"]
        {
            assert!(may_declare_variant(variant), "{variant}");
        }
        // (`Some(x) => y,` passes: the parse tells it from a variant.)
        for other in ["    Store::new()", "    let x = 1;", "    x.push(1);"] {
            assert!(!may_declare_variant(other), "{other}");
        }
    }

    #[test]
    fn chunks_are_put_back_at_their_lines() {
        let chunk = |start_line, text: &str| ChunkHit {
            path: "a.rs".into(),
            start_line,
            end_line: start_line + text.lines().count() as u32 - 1,
            kind: String::new(),
            name: None,
            text: text.into(),
            score: 0.0,
        };
        let text = stitched(&[chunk(1, "use x;"), chunk(3, "fn f() {\n    g()\n}")]);
        assert_eq!(text, "use x;\n\nfn f() {\n    g()\n}");
    }
}
