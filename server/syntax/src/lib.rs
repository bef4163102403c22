//! Syntax: tree-sitter parsing, symbol definitions, imports and chunks.
//!
//! The languages and their queries live in `grammars/` at the workspace root
//! (`registry.toml` plus one folder of `.scm` files per language); they are
//! compiled into the binary with `include_str!`, so a release needs no data files.

mod chunk;
mod registry;
mod symbols;

pub use chunk::{line_windows, Chunk, ChunkLimits};
pub use registry::{language_for_path, language_named, languages, Language};
pub use symbols::{Import, Symbol};
pub use tree_sitter::Tree;

use std::cell::RefCell;
use std::path::Path;
use tree_sitter::Parser;

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
    PARSER.with(|p| {
        let mut p = p.borrow_mut();
        p.set_language(&lang.ts).ok()?;
        p.parse(text, None)
    })
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
        if kind.contains("comment") || kind.contains("string") || kind == "attribute_item" || kind == "inner_attribute_item" {
            return false;
        }
        node = n.parent();
    }
    true
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
