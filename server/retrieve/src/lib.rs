//! Retrieval: for a document and a cursor, the context a colleague would look at —
//! definitions of the symbols around the cursor, similar code, recently edited
//! files, the user's recent edits, the tests that call the function at the cursor, and
//! the commits that shaped this file — ranked by reciprocal rank fusion
//! with per-source caps, cut to a budget, every item with a citation.

mod continuation;
mod cursor;
mod definitions;
mod edits;
mod fusion;
mod history;
mod line_match;
mod recent;
mod similar;
#[cfg(test)]
mod testing;
mod tests_of;
mod words;

pub use continuation::{continuation, Continuation};
pub use cursor::{analyze_cursor, imported_names, line_start, nth_line, CursorContext};
pub use edits::EditHunk;
pub use line_match::{matching_line, MatchingLine};
/// Retrieval fails only when reading the index fails.
pub use patois_index::{Error, Result};
pub use patois_syntax::{contains_word, word_positions};
pub use patois_types::{Citation, Item, Score, Source};
pub use tests_of::is_test_code;
pub use words::{is_keyword, is_std_name, is_test_path};

use patois_index::Index;

/// A document the editor has open or recently changed.
#[derive(Debug, Clone)]
pub struct RecentDoc {
    pub path: String,
    /// Shared with the editor's copy: listing recent documents copies no text.
    pub text: std::sync::Arc<String>,
    /// 1-based line of the last edit.
    pub edit_line: u32,
}

/// How much context to return: `limit` units as counted by `count`.
pub struct Budget<'a> {
    pub limit: usize,
    pub count: &'a dyn Fn(&str) -> usize,
}

pub use patois_types::chars;

/// A request: the document's current (possibly unsaved) text and the cursor.
pub struct Request<'a> {
    /// Repository-relative path with `/` separators.
    pub path: &'a str,
    pub text: &'a str,
    /// Byte offset of the cursor in `text`.
    pub cursor: usize,
    pub recent: &'a [RecentDoc],
    /// The user's recent edits, newest first.
    pub edits: &'a [EditHunk],
    pub budget: Budget<'a>,
}

/// Per-source caps and fusion weights.
#[derive(Debug, Clone)]
pub struct Options {
    pub max_definitions: usize,
    pub max_similar: usize,
    pub max_recent: usize,
    pub max_history: usize,
    pub max_edits: usize,
    pub max_tests: usize,
    pub rrf_k: f32,
    pub weights: [(Source, f32); 6],
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_definitions: 8,
            max_similar: 5,
            max_recent: 3,
            max_history: 4,
            max_edits: 4,
            max_tests: 2,
            rrf_k: 10.0,
            weights: [
                (Source::Definition, 1.6),
                (Source::Edit, 1.3),
                (Source::Similar, 1.0),
                (Source::Test, 0.8),
                (Source::Recent, 0.7),
                (Source::History, 0.5),
            ],
        }
    }
}

/// What a retrieval returned, with the analysis it was based on.
#[derive(Debug)]
pub struct Retrieved {
    pub items: Vec<Item>,
    pub cursor: CursorContext,
}

/// Retrieves ranked, de-duplicated context for `req` within its budget: the cursor is
/// analysed once, each source proposes its items, and fusion ranks and cuts them.
pub fn retrieve(index: &Index, req: &Request, opts: &Options) -> Result<Retrieved> {
    let cx = analyze_cursor(req.path, req.text, req.cursor);
    let similar = similar::similar(index, req, &cx, opts.max_similar)?;
    let co_used = similar::co_used(&similar, req.text, cx.language, 5, 10);
    let definitions = definitions::definitions(index, req, &cx, &co_used, opts.max_definitions)?;
    let lists: Vec<(Source, Vec<Item>)> = vec![
        (Source::Definition, definitions),
        (Source::Similar, similar),
        (Source::Recent, recent::recent(req, opts.max_recent)),
        (Source::History, history::history(index, req, &cx, opts.max_history)?),
        (Source::Edit, edits::recent_edits(req, cx.line, opts.max_edits)),
        (Source::Test, tests_of::tests_of(index, req, &cx, opts.max_tests)?),
    ];
    let items = fusion::fuse(lists, opts, &req.budget);
    Ok(Retrieved { items, cursor: cx })
}
