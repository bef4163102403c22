//! The tests source: tests that call the function the cursor is in. They show how the
//! function is meant to be used and what it must return, which a colleague finishing
//! the function would read.

use crate::cursor::CursorContext;
use crate::similar::{chunk_item, outside_region};
use crate::{contains_word, is_test_path, Item, Request, Result, Source};
use patois_index::{ChunkHit, Index};

/// Names too common to tell which tests exercise this function.
const TOO_COMMON: &[&str] = &[
    "new",
    "main",
    "default",
    "fmt",
    "from",
    "into",
    "drop",
    "clone",
    "eq",
    "hash",
    "init",
    "__init__",
    "constructor",
    "setup",
    "setUp",
    "tearDown",
    "run",
    "get",
    "set",
    "len",
];

/// Whether a chunk (`path`, its symbol `name`, its `text`) is test code: in a test file,
/// or a test function or test module.
pub fn is_test_code(path: &str, name: Option<&str>, text: &str) -> bool {
    is_test_path(path)
        || name.is_some_and(|n| n.starts_with("test") || n.starts_with("Test"))
        || text.contains("#[test]")
        || text.contains("#[tokio::test")
        || text.contains("#[cfg(test)]")
}

fn is_test_chunk(h: &ChunkHit) -> bool {
    is_test_code(&h.path, h.name.as_deref(), &h.text)
}

pub(crate) fn tests_of(
    index: &Index,
    req: &Request,
    cx: &CursorContext,
    cap: usize,
) -> Result<Vec<Item>> {
    let Some(name) = cx.enclosing_name.as_deref() else { return Ok(Vec::new()) };
    // In test code the function under test is what matters: definitions find it.
    let in_test = is_test_path(req.path) || name.starts_with("test") || name.starts_with("Test");
    if cap == 0 || in_test || name.len() < 3 || TOO_COMMON.contains(&name) {
        return Ok(Vec::new());
    }
    let keep = |h: &ChunkHit| {
        outside_region(req, cx, h) && is_test_chunk(h) && contains_word(&h.text, name)
    };
    // Test chunks are a few of the chunks naming the function: ask for more.
    let mut hits = index.search_chunks(name, cap * 8, &keep)?;
    // A test named after the function first (`test_insert`, `insert_keeps_order`).
    hits.sort_by_key(|h| !h.name.as_deref().is_some_and(|n| n.contains(name)));
    let reason = format!("a test that calls `{name}`, the function at the cursor");
    Ok(hits.into_iter().take(cap).map(|h| chunk_item(Source::Test, h, reason.clone())).collect())
}
