//! Test fixtures: real git repositories (or plain folders) in temporary directories, and
//! a blocking LSP client for a real server process ([`lsp`]).

pub mod lsp;

use git2::{Repository, Signature, Time};
use std::path::Path;

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub repo: Option<Repository>,
}

impl Fixture {
    /// An empty git repository.
    pub fn git() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        Fixture { dir, repo: Some(repo) }
    }

    /// A git repository with a store module (`fetch_value`) and a caller of it, written
    /// but not committed (the end-to-end tests add what they need, then commit).
    pub fn store_and_app() -> Fixture {
        let fx = Fixture::git();
        fx.write(
            "src/store.rs",
            "/// Reads a value.\npub fn fetch_value(key: &str) -> u32 {\n    key.len() as u32\n}\n",
        );
        fx.write(
            "src/app.rs",
            "use crate::store::fetch_value;\n\npub fn run() -> u32 {\n    fetch_value(\"abc\")\n}\n",
        );
        fx
    }

    /// A folder that is not a git repository.
    pub fn plain() -> Fixture {
        Fixture { dir: tempfile::tempdir().unwrap(), repo: None }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, rel: &str, content: impl AsRef<[u8]>) {
        let p = self.root().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.root().join(rel)).unwrap()
    }

    /// Commits the whole working tree (honouring .gitignore) as `author` at `time`.
    pub fn commit(&self, msg: &str, author: &str, time: i64) -> String {
        let repo = self.repo.as_ref().expect("a git fixture");
        let mut idx = repo.index().unwrap();
        idx.add_all(["*"], git2::IndexAddOption::DEFAULT, None).unwrap();
        idx.update_all(["*"], None).unwrap();
        idx.write().unwrap();
        let tree = repo.find_tree(idx.write_tree().unwrap()).unwrap();
        let sig =
            Signature::new(author, &format!("{author}@example.com"), &Time::new(time, 0)).unwrap();
        let parents: Vec<_> =
            repo.head().ok().and_then(|h| h.peel_to_commit().ok()).into_iter().collect();
        let refs: Vec<_> = parents.iter().collect();
        repo.commit(Some("HEAD"), &sig, &sig, msg, &tree, &refs).unwrap().to_string()
    }
}

/// Whether an end-to-end test that needs a tool outside Rust (Neovim, Node and code-server,
/// llama-cpp-python) can run. When `present` is false it writes which test is skipped and
/// what to install to stderr, past the test harness's capture, and returns false; with
/// `PATOIS_REQUIRE_TOOLS` set (scripts/test.sh, CI) a missing tool fails the test instead.
#[track_caller]
pub fn tool_ready(test: &str, present: bool, install: &str) -> bool {
    if present {
        return true;
    }
    let why = format!("{test} needs {install}");
    if std::env::var_os("PATOIS_REQUIRE_TOOLS").is_some() {
        panic!("{why} (PATOIS_REQUIRE_TOOLS is set, so it may not be skipped)");
    }
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "skipped: {why}; scripts/test.sh installs everything");
    false
}

/// Whether `program args…` runs and exits successfully.
pub fn runs(program: &str, args: &[&str]) -> bool {
    std::process::Command::new(program)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
