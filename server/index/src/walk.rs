//! Finding the files to index the way git would, and refusing the ones that must
//! not be indexed (binary, non-UTF-8, huge, likely secrets).

use ignore::WalkBuilder;
use regex::RegexSet;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Why a file was left out of the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    Binary,
    NonUtf8,
    TooLarge,
    Secret,
    Unreadable,
}

impl SkipReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::Binary => "binary",
            SkipReason::NonUtf8 => "non_utf8",
            SkipReason::TooLarge => "too_large",
            SkipReason::Secret => "secret",
            SkipReason::Unreadable => "unreadable",
        }
    }
}

/// A file the walk found: repo-relative path with `/` separators.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub rel: String,
    pub abs: PathBuf,
    pub size: u64,
    pub mtime_ns: i128,
}

/// Files under `root` that git would consider: `.gitignore` (also outside a git
/// repo), `.git/info/exclude`, the global excludes file and `.patoisignore` are
/// honoured; `.git` and the index folder itself are never entered. Sorted by path.
pub fn walk(root: &Path, index_dir: &Path) -> Vec<Candidate> {
    let index_dir = index_dir.to_path_buf();
    let mut out = Vec::new();
    let walker = WalkBuilder::new(root)
        .hidden(false)
        .git_ignore(true)
        .git_exclude(true)
        .git_global(true)
        .require_git(false)
        .follow_links(false)
        .add_custom_ignore_filename(".patoisignore")
        .filter_entry(move |e| e.file_name() != ".git" && e.path() != index_dir)
        .build();
    for entry in walker.flatten() {
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            continue;
        }
        let Ok(rel) = entry.path().strip_prefix(root) else { continue };
        let Some(rel) = rel.to_str() else { continue };
        let meta = entry.metadata().ok();
        let mtime_ns = meta
            .as_ref()
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_nanos() as i128)
            .unwrap_or(-1);
        out.push(Candidate {
            rel: rel.replace('\\', "/"),
            abs: entry.path().to_path_buf(),
            size: meta.map(|m| m.len()).unwrap_or(0),
            mtime_ns,
        });
    }
    out.sort_by(|a, b| a.rel.cmp(&b.rel));
    out
}

/// File names that hold credentials by convention.
pub fn is_secret_name(rel: &str) -> bool {
    let name = rel.rsplit('/').next().unwrap_or(rel).to_ascii_lowercase();
    name == ".env"
        || name.starts_with(".env.")
        || name.starts_with("id_rsa")
        || name.starts_with("id_dsa")
        || name.starts_with("id_ecdsa")
        || name.starts_with("id_ed25519")
        || [".pem", ".key", ".p12", ".pfx", ".jks", ".keystore", ".asc", ".gpg"]
            .iter()
            .any(|e| name.ends_with(e))
        || [
            ".netrc",
            ".npmrc",
            ".pypirc",
            ".htpasswd",
            "credentials",
            "credentials.json",
            ".git-credentials",
        ]
        .contains(&name.as_str())
}

/// Content that looks like a key or token: private key blocks, AWS access keys,
/// GitHub, GitLab, Slack and OpenAI-style tokens, and quoted secrets assigned
/// to variables named like one.
pub fn contains_secret(text: &str) -> bool {
    static SET: OnceLock<RegexSet> = OnceLock::new();
    SET.get_or_init(|| {
        RegexSet::new([
            r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY(?: BLOCK)?-----",
            r"(?-u:\b)(?:AKIA|ASIA)[0-9A-Z]{16}(?-u:\b)",
            r"(?-u:\b)gh[pousr]_[A-Za-z0-9]{36,}(?-u:\b)",
            r"(?-u:\b)github_pat_[A-Za-z0-9_]{22,}(?-u:\b)",
            r"(?-u:\b)glpat-[A-Za-z0-9_\-]{20,}(?-u:\b)",
            r"(?-u:\b)xox[abposr]-[A-Za-z0-9-]{10,}(?-u:\b)",
            r"(?-u:\b)sk-[A-Za-z0-9_\-]{32,}(?-u:\b)",
            r#"(?i)(?-u:\b)(?:api[_-]?key|secret[_-]?key|access[_-]?token|auth[_-]?token|password|passwd)(?-u:\b)\s*[:=]\s*["'][^"'\s]{12,}["']"#,
        ])
        .expect("secret patterns compile")
    })
    .is_match(text)
}

/// Binary content: a NUL byte in the first 8 KiB (git's test).
pub fn looks_binary(bytes: &[u8]) -> bool {
    bytes[..bytes.len().min(8192)].contains(&0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names_and_contents() {
        for n in [".env", "app/.env.local", "id_rsa", "id_ed25519.pub", "certs/server.pem", "x.key"]
        {
            assert!(is_secret_name(n), "{n}");
        }
        for n in ["src/env.rs", "environment.ts", "keys.rs", "README.md"] {
            assert!(!is_secret_name(n), "{n}");
        }
        let key = format!("-----BEGIN RSA {}-----\nMIIE", "PRIVATE KEY");
        assert!(contains_secret(&key));
        assert!(contains_secret(&format!("aws = \"{}{}\"", "AKIA", "ABCDEFGHIJKLMNOP")));
        assert!(contains_secret(&format!("token: {}{}", "ghp_", "a".repeat(36))));
        assert!(contains_secret(&format!("API_KEY = \"{}\"", "x7Gh2kLp9QrT5vW")));
        assert!(!contains_secret("let password = read_password()?;"));
        assert!(!contains_secret("fn api_key(&self) -> &str { &self.key }"));
    }
}
