//! Completions already computed, and the last one shown.

use crate::CompletionResult;

/// A completion as the model made it, and where.
pub(crate) struct Shown {
    pub(crate) path: String,
    pub(crate) prefix: String,
    pub(crate) suffix: String,
    pub(crate) result: CompletionResult,
}

/// Completions already computed, keyed by document and the text around the cursor.
#[derive(Default)]
pub(crate) struct CompletionCache {
    pub(crate) entries: Vec<(CacheKey, CompletionResult)>,
}

pub(crate) const CACHE_ENTRIES: usize = 64;

/// A document and a hash of its text before and after the cursor.
#[derive(PartialEq, Eq)]
pub(crate) struct CacheKey {
    pub(crate) path: String,
    pub(crate) text: u64,
}

impl CacheKey {
    pub(crate) fn new(path: &str, prefix: &str, suffix: &str) -> CacheKey {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (prefix, suffix).hash(&mut h);
        CacheKey { path: path.to_string(), text: h.finish() }
    }
}
