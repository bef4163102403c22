//! Completions already computed, and the last one shown.

use crate::CompletionResult;

/// A completion as the model made it, and where.
pub(crate) struct Shown {
    pub(crate) path: String,
    pub(crate) prefix: String,
    pub(crate) suffix: String,
    pub(crate) result: CompletionResult,
}

/// Completions already computed, keyed by document and the text around the cursor; the
/// oldest goes when it holds [`CACHE_ENTRIES`].
#[derive(Default)]
pub(crate) struct CompletionCache {
    entries: Vec<(CacheKey, CompletionResult)>,
}

const CACHE_ENTRIES: usize = 64;

impl CompletionCache {
    pub(crate) fn get(&self, key: &CacheKey) -> Option<CompletionResult> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, r)| r.clone())
    }

    pub(crate) fn insert(&mut self, key: CacheKey, result: CompletionResult) {
        if self.entries.len() >= CACHE_ENTRIES {
            self.entries.remove(0);
        }
        self.entries.push((key, result));
    }

    pub(crate) fn clear(&mut self) {
        self.entries.clear();
    }
}

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
