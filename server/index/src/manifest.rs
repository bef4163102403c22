//! The manifest: what the index holds, next to the tantivy files. It makes runs
//! incremental (blob ids, mtimes, the last indexed commit) and carries the schema
//! version; a missing, unreadable or mismatched manifest means a rebuild.

use crate::error::{io, Error, Result};
use crate::SkipReason;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// Bump when the schema, the tokenizer or what is extracted changes.
pub const SCHEMA_VERSION: u32 = 2;
pub const MANIFEST_FILE: &str = "patois-manifest.json";

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Manifest {
    pub schema_version: u32,
    /// Indexed files by repo-relative path.
    pub files: BTreeMap<String, FileEntry>,
    /// Files the last run skipped, with the reason.
    pub skipped: BTreeMap<String, SkipReason>,
    /// The commit history was indexed up to (HEAD at the last run).
    pub head: Option<String>,
    pub commits: u64,
    /// Per-file history aggregated over all indexed commits.
    pub history: BTreeMap<String, FileHistory>,
    /// PR numbers imported with `--prs`.
    pub prs: Vec<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    pub blob: String,
    pub size: u64,
    pub mtime_ns: i128,
    pub language: Option<String>,
    pub chunks: u32,
    pub symbols: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileHistory {
    pub last_commit: String,
    pub last_time: i64,
    /// Non-merge commits that touched the file.
    pub churn: u32,
    /// Distinct author names, most recent first.
    pub authors: Vec<String>,
}

impl Manifest {
    pub fn load(dir: &Path) -> Result<Manifest> {
        let path = dir.join(MANIFEST_FILE);
        let text = std::fs::read_to_string(&path).map_err(io("reading", &path))?;
        let invalid = |message: String| Error::Invalid { path: path.clone(), message };
        let m: Manifest = serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;
        if m.schema_version != SCHEMA_VERSION {
            return Err(invalid(format!(
                "schema version {}, this patois writes {SCHEMA_VERSION}",
                m.schema_version
            )));
        }
        Ok(m)
    }

    /// Writes atomically (temp file + rename), so a crash never leaves half a manifest.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let path = dir.join(MANIFEST_FILE);
        let tmp = dir.join(format!("{MANIFEST_FILE}.tmp"));
        let json = serde_json::to_vec(self).expect("a manifest serializes");
        std::fs::write(&tmp, json).map_err(io("writing", &tmp))?;
        std::fs::rename(&tmp, &path).map_err(io("renaming into place", &path))
    }
}
