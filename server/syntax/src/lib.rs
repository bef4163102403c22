//! Syntax: tree-sitter parsing, symbol definitions, imports and chunks.
//!
//! The languages and their queries live in `grammars/` at the workspace root
//! (`registry.toml` plus one folder of `.scm` files per language); they are
//! compiled into the binary with `include_str!`, so a release needs no data files.

mod chunk;
mod records;
mod registry;
mod symbols;
mod variants;

pub use chunk::{line_windows, Chunk, ChunkLimits};
pub use records::{field_declared_at, literals_lacking, FieldDecl, FieldInsert, RecordKind};
pub use registry::{
    language_for_path, language_named, languages, rules_of, Language, Rules, TestPaths,
};
pub use symbols::{Import, Symbol, SymbolKind};
pub use tree_sitter::Tree;
pub use variants::{matches_lacking, variant_declared_at, VariantDecl};

use std::cell::RefCell;
use std::path::Path;
use std::sync::Mutex;
use tree_sitter::{InputEdit, Parser, Point};

/// What patois learns from one file.
#[derive(Debug, Clone, Default)]
pub struct Analysis {
    /// Language name from the registry, or `None` for plain text.
    pub language: Option<&'static str>,
    pub symbols: Vec<Symbol>,
    pub imports: Vec<Import>,
    pub chunks: Vec<Chunk>,
    /// The syntax tree, for callers that look further (`is_code`).
    pub tree: Option<Tree>,
}

thread_local! {
    static PARSER: RefCell<Parser> = RefCell::new(Parser::new());
}

/// Parses `text` with the grammar of `lang`. `None` if tree-sitter gives up
/// (it only does so on cancellation or a grammar ABI mismatch).
pub fn parse(lang: &Language, text: &str) -> Option<Tree> {
    parse_from(lang, text, None)
}

fn parse_from(lang: &Language, text: &str, old: Option<&Tree>) -> Option<Tree> {
    PARSER.with(|p| {
        let mut p = p.borrow_mut();
        p.set_language(&lang.ts).ok()?;
        p.parse(text, old)
    })
}

/// The texts and trees `outline` parsed last, newest first, for reparsing incrementally.
static TREES: Mutex<Vec<(String, String, Tree)>> = Mutex::new(Vec::new());
const KEPT_TREES: usize = 8;

/// Symbols, imports and the tree of a file, without chunks: what the analysis of
/// a cursor needs. A path seen recently (an open document being edited) is
/// reparsed incrementally from its previous tree.
pub fn outline(path: &Path, text: &str) -> Analysis {
    let Some(lang) = language_for_path(path) else { return Analysis::default() };
    let key = path.to_string_lossy().into_owned();
    let previous = {
        let mut trees = TREES.lock().unwrap_or_else(|e| e.into_inner());
        trees.iter().position(|(p, _, _)| *p == key).map(|i| trees.remove(i))
    };
    let tree = match previous {
        Some((_, old_text, mut old_tree)) => {
            old_tree.edit(&text_edit(&old_text, text));
            parse_from(lang, text, Some(&old_tree))
        }
        None => parse(lang, text),
    };
    let Some(tree) = tree else {
        return Analysis { language: Some(lang.name), ..Default::default() };
    };
    let (symbols, imports, _) = symbols::extract(lang, &tree, text);
    let mut trees = TREES.lock().unwrap_or_else(|e| e.into_inner());
    trees.insert(0, (key, text.to_string(), tree.clone()));
    trees.truncate(KEPT_TREES);
    Analysis { language: Some(lang.name), symbols, imports, chunks: Vec::new(), tree: Some(tree) }
}

/// The edit that turns `old` into `new`: everything between their common prefix and suffix.
fn text_edit(old: &str, new: &str) -> InputEdit {
    let mut start = old.bytes().zip(new.bytes()).take_while(|(a, b)| a == b).count();
    while !new.is_char_boundary(start) || !old.is_char_boundary(start) {
        start -= 1;
    }
    let max_suffix = old.len().min(new.len()) - start;
    let mut suffix = old
        .bytes()
        .rev()
        .zip(new.bytes().rev())
        .take(max_suffix)
        .take_while(|(a, b)| a == b)
        .count();
    while !old.is_char_boundary(old.len() - suffix) || !new.is_char_boundary(new.len() - suffix) {
        suffix -= 1;
    }
    let point = |text: &str, byte: usize| {
        let before = &text[..byte];
        let row = before.bytes().filter(|b| *b == b'\n').count();
        Point { row, column: byte - records::line_start_of(text, byte) }
    };
    let (old_end, new_end) = (old.len() - suffix, new.len() - suffix);
    InputEdit {
        start_byte: start,
        old_end_byte: old_end,
        new_end_byte: new_end,
        start_position: point(old, start),
        old_end_position: point(old, old_end),
        new_end_position: point(new, new_end),
    }
}

/// Symbols, imports and chunks of one file. Files in languages patois does not
/// parse get line-window chunks and no symbols.
pub fn analyze(path: &Path, text: &str, limits: &ChunkLimits) -> Analysis {
    let Some(lang) = language_for_path(path) else {
        return Analysis { chunks: line_windows(text, 0, limits), ..Default::default() };
    };
    let Some(tree) = parse(lang, text) else {
        return Analysis {
            language: Some(lang.name),
            chunks: line_windows(text, 0, limits),
            ..Default::default()
        };
    };
    let (symbols, imports, marked) = symbols::extract(lang, &tree, text);
    let chunks = chunk::chunks(&tree, text, &symbols, &marked, limits);
    Analysis { language: Some(lang.name), symbols, imports, chunks, tree: Some(tree) }
}

/// Whether the bytes `start..end` are code: not inside a comment, a string or an
/// attribute (`#[test]`, decorators' arguments stay code).
pub fn is_code(tree: &Tree, start: usize, end: usize) -> bool {
    let mut node = tree.root_node().descendant_for_byte_range(start, end);
    while let Some(n) = node {
        let kind = n.kind();
        if kind.contains("comment")
            || kind.contains("string")
            || kind == "attribute_item"
            || kind == "inner_attribute_item"
        {
            return false;
        }
        node = n.parent();
    }
    true
}

/// Whether the identifier at `start..end` stands where a type does (`x: Store`, `[]string`,
/// `u32`): a type's name, a built-in type, or an identifier in a type annotation (Python).
pub fn names_a_type(tree: &Tree, start: usize, end: usize) -> bool {
    let Some(node) = tree.root_node().descendant_for_byte_range(start, end) else { return false };
    matches!(node.kind(), "type_identifier" | "primitive_type" | "predefined_type")
        || node.parent().is_some_and(|p| p.kind() == "type")
}

/// The identifier node spanning exactly `start..end`, when it is in code.
fn identifier_in_code(tree: &Tree, start: usize, end: usize) -> Option<tree_sitter::Node<'_>> {
    let node = tree.root_node().descendant_for_byte_range(start, end)?;
    let exact = node.start_byte() == start && node.end_byte() == end;
    (node.kind().ends_with("identifier") && exact && is_code(tree, start, end)).then_some(node)
}

/// Whether the identifier at `start..end` is a name being declared, in code: the name of a
/// definition (a function, type, field, Go parameter: its parent's `name`) or a name
/// being bound (`let x`, a parameter, an assignment's target).
pub fn is_declaration(tree: &Tree, text: &str, start: usize, end: usize) -> bool {
    let Some(node) = identifier_in_code(tree, start, end) else { return false };
    let names = node.parent().and_then(|p| p.child_by_field_name("name"));
    names.is_some_and(|n| n == node) || !is_reference(tree, text, start, end)
}

/// Whether the identifier at `start..end` is a reference to something defined
/// elsewhere: an identifier node in code that is not a module path segment
/// (`a` in `a::b`, lowercase) and not a name being bound (`let x`, a parameter).
pub fn is_reference(tree: &Tree, text: &str, start: usize, end: usize) -> bool {
    let Some(node) = identifier_in_code(tree, start, end) else { return false };
    let lowercase = text[start..end].starts_with(|c: char| c.is_ascii_lowercase());
    if lowercase && text[end..].starts_with("::") {
        return false;
    }
    let binding = [
        "let_declaration",
        "parameter",
        "closure_parameters",
        "for_expression",
        "typed_parameter",
        "default_parameter",
        "required_parameter",
        "variable_declarator",
        "short_var_declaration",
        // Python: plain parameters, `*args`/`**kwargs`, `name=` in a call, assignment targets.
        "parameters",
        "lambda_parameters",
        "list_splat_pattern",
        "dictionary_splat_pattern",
        "keyword_argument",
        "assignment",
        "for_statement",
    ];
    let mut n = node;
    while let Some(p) = n.parent() {
        let kind = p.kind();
        if binding.contains(&kind) {
            // Only the bound pattern, not the value or the type.
            let bound = p
                .child_by_field_name("pattern")
                .or(p.child_by_field_name("name"))
                .or(p.child_by_field_name("left"));
            let whole = matches!(
                kind,
                "closure_parameters"
                    | "parameters"
                    | "lambda_parameters"
                    | "list_splat_pattern"
                    | "dictionary_splat_pattern"
            );
            if whole || bound.is_some_and(|b| b.start_byte() <= start && end <= b.end_byte()) {
                return false;
            }
        }
        if kind.ends_with("pattern") || kind == "pattern_list" || kind == "tuple" {
            n = p;
            continue;
        }
        break;
    }
    true
}

/// Whether `word` occurs in `text` as a whole identifier (not inside a longer one).
pub fn contains_word(text: &str, word: &str) -> bool {
    word_positions(text, word).next().is_some()
}

/// Byte offsets where `word` occurs in `text` as a whole identifier.
pub fn word_positions<'t>(text: &'t str, word: &'t str) -> impl Iterator<Item = usize> + 't {
    text.match_indices(word).map(|(i, _)| i).filter(move |&i| {
        let before =
            text[..i].chars().next_back().is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
        let after = text[i + word.len()..]
            .chars()
            .next()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
        before && after
    })
}

/// The top-level item around line `line` (1-based) of `text`: from the last line above it
/// that starts at column 0 to the line before the next one. Returns its first line's
/// number and its text.
pub fn top_level_item(text: &str, line: u32) -> (u32, &str) {
    let starts: Vec<usize> =
        std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect();
    let at_column_0 = |n: usize| {
        let rest = &text[starts[n]..];
        rest.chars().next().is_some_and(|c| !c.is_whitespace() && c != '}' && c != ')')
    };
    let here = (line as usize).saturating_sub(1).min(starts.len() - 1);
    let first = (0..=here).rev().find(|&n| at_column_0(n)).unwrap_or(0);
    let next = (here + 1..starts.len()).find(|&n| at_column_0(n));
    let end = next.map_or(text.len(), |n| starts[n]);
    (first as u32 + 1, &text[starts[first]..end])
}

/// Byte offsets of line starts, for many line lookups in one text.
pub struct Lines(Vec<usize>);

impl Lines {
    pub fn new(text: &str) -> Lines {
        let mut starts = vec![0];
        starts.extend(text.bytes().enumerate().filter(|(_, b)| *b == b'\n').map(|(i, _)| i + 1));
        Lines(starts)
    }
    /// 1-based line of a byte offset.
    pub fn line(&self, byte: usize) -> u32 {
        self.0.partition_point(|&s| s <= byte) as u32
    }
    /// Byte offset where 1-based line `n` starts (the text's length past the end).
    pub fn start(&self, n: u32, text: &str) -> usize {
        self.0.get(n.saturating_sub(1) as usize).copied().unwrap_or(text.len())
    }
    /// The text of 1-based line `n` without its newline.
    pub fn text<'a>(&self, n: u32, text: &'a str) -> &'a str {
        let s = self.start(n, text).min(text.len());
        let e = self.0.get(n as usize).map(|e| e - 1).unwrap_or(text.len()).max(s);
        &text[s..e]
    }
    /// 1-based line of the last byte of a non-empty range ending at `end`.
    pub fn last_line(&self, start: usize, end: usize) -> u32 {
        self.line(end.saturating_sub(1).max(start))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declarations_are_told_from_uses() {
        let text = "fn load(n: u32) -> u32 {\n    let v = n;\n    // v\n    store(v)\n}\n";
        let lang = language_for_path(Path::new("a.rs")).unwrap();
        let tree = parse(lang, text).unwrap();
        // The identifier at `after` + `skip` bytes, `len` long.
        let at = |after: &str, skip: usize, len: usize| {
            let s = text.find(after).unwrap() + skip;
            is_declaration(&tree, text, s, s + len)
        };
        assert!(
            at("load", 0, 4) && at("n:", 0, 1) && at("let v", 4, 1),
            "a function, a parameter, a local"
        );
        assert!(!at("// v", 3, 1), "in a comment");
        assert!(!at("store(v)", 6, 1) && !at("store", 0, 5) && !at("u32", 0, 3), "uses");
        let u32_at = text.find("u32").unwrap();
        assert!(names_a_type(&tree, u32_at, u32_at + 3));
        let store_at = text.find("store").unwrap();
        assert!(!names_a_type(&tree, store_at, store_at + 5));
    }

    #[test]
    fn a_top_level_item_runs_from_a_line_at_column_0_to_the_next() {
        let text = "fn a() {\n    let v = 1;\n    f(v);\n}\n\nfn b() {\n    let v = 2;\n}\n";
        assert_eq!(top_level_item(text, 3), (1, "fn a() {\n    let v = 1;\n    f(v);\n}\n\n"));
        assert_eq!(top_level_item(text, 7).0, 6);
    }
}
