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

use std::cell::RefCell;
use std::path::Path;
use tree_sitter::{Parser, Tree};

/// What patois learns from one file.
#[derive(Debug, Clone, Default)]
pub struct Analysis {
    /// Language name from the registry, or `None` for plain text.
    pub language: Option<&'static str>,
    pub symbols: Vec<Symbol>,
    pub imports: Vec<Import>,
    pub chunks: Vec<Chunk>,
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
    let (symbols, imports) = symbols::extract(lang, &tree, text);
    let chunks = chunk::chunks(lang, &tree, text, &symbols, limits);
    Analysis { language: Some(lang.name), symbols, imports, chunks }
}

/// 1-based line number of a byte offset.
pub fn line_of(text: &str, byte: usize) -> u32 {
    1 + text.as_bytes()[..byte.min(text.len())].iter().filter(|&&b| b == b'\n').count() as u32
}
