//! Git history through git2: commits reachable from HEAD, the files each one
//! touched (with added/removed line counts), PR numbers parsed from messages,
//! and content hashes in git's blob-id form.

use git2::{DiffOptions, ObjectType, Oid, Repository, Sort};
use regex::Regex;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A git failure, with the file or repository it concerns.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("git: {0}")]
    Git(#[from] git2::Error),
    #[error("opening the git repository at {}: {source}", path.display())]
    Open { path: PathBuf, source: git2::Error },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io { path: path.to_path_buf(), source }
}

/// One file a commit touched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileChange {
    pub path: String,
    pub added: u32,
    pub removed: u32,
}

/// A commit with what patois needs of it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CommitInfo {
    pub id: String,
    pub author: String,
    pub email: String,
    /// Seconds since the Unix epoch (committer time).
    pub time: i64,
    pub message: String,
    pub pr: Option<u64>,
    pub is_merge: bool,
    pub files: Vec<FileChange>,
}

impl CommitInfo {
    pub fn summary(&self) -> &str {
        self.message.lines().next().unwrap_or("")
    }
}

/// Commits found by a walk, newest first.
#[derive(Debug, Default)]
pub struct Walk {
    pub commits: Vec<CommitInfo>,
    /// The previously indexed commit is no longer an ancestor of HEAD (rebase,
    /// reset, branch switch): the walk covers all of history again.
    pub rewritten: bool,
}

/// A git repository opened for reading history.
pub struct Repo {
    repo: Repository,
}

/// The git blob id of some content (what `git hash-object` prints).
pub fn blob_id(content: &[u8]) -> String {
    Oid::hash_object(ObjectType::Blob, content).map(|o| o.to_string()).unwrap_or_default()
}

/// The PR number of a commit message: `Title (#123)`, `Merge pull request #123 from ...`,
/// or GitLab's `See merge request group/project!123`.
pub fn parse_pr_number(message: &str) -> Option<u64> {
    static RES: OnceLock<[Regex; 3]> = OnceLock::new();
    let res = RES.get_or_init(|| {
        [
            Regex::new(r"^Merge pull request #(\d+)").unwrap(),
            Regex::new(r"\(#(\d+)\)\s*$").unwrap(),
            Regex::new(r"(?m)^See merge request \S+!(\d+)").unwrap(),
        ]
    });
    let summary = message.lines().next().unwrap_or("");
    res[0]
        .captures(summary)
        .or_else(|| res[1].captures(summary))
        .or_else(|| res[2].captures(message))
        .and_then(|c| c[1].parse().ok())
}

impl Repo {
    /// Opens the repository containing `dir`; `Ok(None)` when `dir` is not inside one.
    pub fn discover(dir: &Path) -> Result<Option<Repo>> {
        match Repository::discover(dir) {
            Ok(repo) if repo.workdir().is_some() => Ok(Some(Repo { repo })),
            Ok(_) => Ok(None),
            Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(None),
            Err(source) => Err(Error::Open { path: dir.to_path_buf(), source }),
        }
    }

    /// The working tree root.
    pub fn workdir(&self) -> PathBuf {
        self.repo.workdir().expect("checked in discover").to_path_buf()
    }

    /// The commit HEAD points at; `None` in a repository with no commits.
    pub fn head(&self) -> Result<Option<String>> {
        match self.repo.head() {
            Ok(r) => Ok(r.peel_to_commit().ok().map(|c| c.id().to_string())),
            Err(e)
                if matches!(
                    e.code(),
                    git2::ErrorCode::UnbornBranch | git2::ErrorCode::NotFound
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Adds a pattern to `.git/info/exclude` unless it is there already.
    pub fn exclude(&self, pattern: &str) -> Result<()> {
        let info = self.repo.path().join("info");
        let path = info.join("exclude");
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        if current.lines().any(|l| l.trim() == pattern) {
            return Ok(());
        }
        std::fs::create_dir_all(&info).map_err(io(&info))?;
        let mut next = current;
        if !next.is_empty() && !next.ends_with('\n') {
            next.push('\n');
        }
        next.push_str(pattern);
        next.push('\n');
        std::fs::write(&path, next).map_err(io(&path))
    }

    /// Commits reachable from HEAD and not from `since`, newest first. When `since`
    /// is gone or no longer an ancestor of HEAD, returns all of history with
    /// `rewritten` set.
    pub fn commits_since(&self, since: Option<&str>) -> Result<Walk> {
        let Some(head) = self.head()? else { return Ok(Walk::default()) };
        let head = Oid::from_str(&head)?;
        let mut walk = self.repo.revwalk()?;
        walk.set_sorting(Sort::TOPOLOGICAL | Sort::TIME)?;
        walk.push(head)?;
        let mut rewritten = false;
        if let Some(since) = since {
            match Oid::from_str(since).ok().filter(|o| self.repo.find_commit(*o).is_ok()) {
                Some(old)
                    if old == head || self.repo.graph_descendant_of(head, old).unwrap_or(false) =>
                {
                    walk.hide(old)?
                }
                _ => rewritten = true,
            }
        }
        let mut commits = Vec::new();
        for oid in walk {
            commits.push(self.commit_info(oid?)?);
        }
        Ok(Walk { commits, rewritten })
    }

    fn commit_info(&self, oid: Oid) -> Result<CommitInfo> {
        let commit = self.repo.find_commit(oid)?;
        let tree = commit.tree()?;
        let parent_tree = match commit.parent(0) {
            Ok(p) => Some(p.tree()?),
            Err(_) => None,
        };
        let mut opts = DiffOptions::new();
        opts.context_lines(0).ignore_submodules(true);
        let diff =
            self.repo.diff_tree_to_tree(parent_tree.as_ref(), Some(&tree), Some(&mut opts))?;
        let mut files = Vec::with_capacity(diff.deltas().len());
        for (i, delta) in diff.deltas().enumerate() {
            let Some(path) = delta.new_file().path().or(delta.old_file().path()) else { continue };
            // A blob the clone does not hold (a partial clone fetches them on demand, which
            // libgit2 cannot): the file is still listed as changed, with no line counts.
            let stats =
                git2::Patch::from_diff(&diff, i).ok().flatten().and_then(|p| p.line_stats().ok());
            let (added, removed) = stats.map_or((0, 0), |(_, a, r)| (a as u32, r as u32));
            files.push(FileChange {
                path: path.to_string_lossy().replace('\\', "/"),
                added,
                removed,
            });
        }
        let message = commit.message().unwrap_or("").to_string();
        let author = commit.author();
        Ok(CommitInfo {
            id: oid.to_string(),
            author: author.name().unwrap_or("").to_string(),
            email: author.email().unwrap_or("").to_string(),
            time: commit.time().seconds(),
            pr: parse_pr_number(&message),
            message,
            is_merge: commit.parent_count() > 1,
            files,
        })
    }

    /// The commits that last changed lines `lines` (1-based, inclusive) of `path`, newest
    /// first. With `unsaved`, the lines are those of the editor's text: lines changed since
    /// HEAD belong to no commit and are left out.
    pub fn blame_lines(
        &self,
        path: &str,
        unsaved: Option<&str>,
        lines: (u32, u32),
    ) -> Result<Vec<String>> {
        let committed = self.repo.blame_file(Path::new(path), None)?;
        let blame = match unsaved {
            Some(text) => committed.blame_buffer(text.as_bytes())?,
            None => committed,
        };
        // Hunks, not lines: a range may reach far past the file's end.
        let mut hunks: Vec<(i64, Oid)> = blame
            .iter()
            .filter(|h| {
                let start = h.final_start_line() as u64;
                let end = start + h.lines_in_hunk() as u64;
                start <= u64::from(lines.1) && u64::from(lines.0.max(1)) < end
            })
            .map(|h| (h.final_signature().map_or(0, |s| s.when().seconds()), h.final_commit_id()))
            .filter(|(_, id)| !id.is_zero())
            .collect();
        hunks.sort_by_key(|h| std::cmp::Reverse(h.0));
        let mut out: Vec<String> = Vec::new();
        for (_, id) in hunks {
            let id = id.to_string();
            if !out.contains(&id) {
                out.push(id);
            }
        }
        Ok(out)
    }
}

/// Lines a commit added to one file (new-side line numbers, 1-based).
#[derive(Debug, Clone)]
pub struct AddedLines {
    pub path: String,
    pub lines: Vec<(u32, String)>,
}

/// One hunk of a commit: lines `old_start..` (1-based; for a pure addition, the line after
/// which it goes) of `path` removed, `added` put in their place.
#[derive(Debug, Clone, PartialEq)]
pub struct Hunk {
    pub path: String,
    pub old_start: u32,
    pub removed: Vec<String>,
    pub added: Vec<String>,
}

impl Repo {
    /// Up to `n` commits on HEAD's first-parent chain, newest first.
    pub fn first_parent_chain(&self, n: usize) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let Some(head) = self.head()? else { return Ok(out) };
        let mut c = self.repo.find_commit(Oid::from_str(&head)?)?;
        while out.len() < n {
            out.push(c.id().to_string());
            match c.parent(0) {
                Ok(p) => c = p,
                Err(_) => break,
            }
        }
        Ok(out)
    }

    /// The first parent of a commit.
    pub fn parent(&self, id: &str) -> Result<Option<String>> {
        let c = self.repo.find_commit(Oid::from_str(id)?)?;
        Ok(c.parent_id(0).ok().map(|p| p.to_string()))
    }

    /// Commit `id` against its first parent (the empty tree for a root), no context lines.
    fn first_parent_diff(&self, id: &str) -> Result<git2::Diff<'_>> {
        let commit = self.repo.find_commit(Oid::from_str(id)?)?;
        let tree = commit.tree()?;
        let parent = commit.parent(0).ok().map(|p| p.tree()).transpose()?;
        let mut opts = DiffOptions::new();
        opts.context_lines(0);
        Ok(self.repo.diff_tree_to_tree(parent.as_ref(), Some(&tree), Some(&mut opts))?)
    }

    /// The lines a commit added, per file, compared with its first parent.
    pub fn added_lines(&self, id: &str) -> Result<Vec<AddedLines>> {
        let diff = self.first_parent_diff(id)?;
        let mut out: Vec<AddedLines> = Vec::new();
        diff.foreach(
            &mut |_, _| true,
            None,
            None,
            Some(&mut |delta, _hunk, line| {
                if line.origin() == '+' {
                    if let (Some(path), Some(n)) = (delta.new_file().path(), line.new_lineno()) {
                        let path = path.to_string_lossy().replace('\\', "/");
                        let text = String::from_utf8_lossy(line.content())
                            .trim_end_matches(['\n', '\r'])
                            .to_string();
                        match out.last_mut() {
                            Some(a) if a.path == path => a.lines.push((n, text)),
                            _ => out.push(AddedLines { path, lines: vec![(n, text)] }),
                        }
                    }
                }
                true
            }),
        )?;
        Ok(out)
    }

    /// A commit's hunks against its first parent, in diff order (files, then lines).
    pub fn hunks(&self, id: &str) -> Result<Vec<Hunk>> {
        let diff = self.first_parent_diff(id)?;
        let mut out: Vec<Hunk> = Vec::new();
        diff.foreach(
            &mut |_, _| true,
            None,
            None,
            Some(&mut |delta, hunk, line| {
                let (Some(path), Some(h)) = (delta.new_file().path(), hunk) else { return true };
                let path = path.to_string_lossy().replace('\\', "/");
                let text = String::from_utf8_lossy(line.content())
                    .trim_end_matches(['\n', '\r'])
                    .to_string();
                let same =
                    out.last().is_some_and(|l| l.path == path && l.old_start == h.old_start());
                if !same {
                    let old_start = h.old_start();
                    out.push(Hunk { path, old_start, removed: Vec::new(), added: Vec::new() });
                }
                let last = out.last_mut().expect("pushed above");
                match line.origin() {
                    '-' => last.removed.push(text),
                    '+' => last.added.push(text),
                    _ => {}
                }
                true
            }),
        )?;
        Ok(out)
    }

    /// The content of `path` at commit `id`; `None` when absent or not a blob.
    pub fn file_at(&self, id: &str, path: &str) -> Result<Option<Vec<u8>>> {
        let tree = self.repo.find_commit(Oid::from_str(id)?)?.tree()?;
        let Ok(entry) = tree.get_path(Path::new(path)) else { return Ok(None) };
        Ok(entry.to_object(&self.repo)?.as_blob().map(|b| b.content().to_vec()))
    }

    /// Writes the tree of commit `id` into `dir` (which should be empty).
    pub fn export_tree(&self, id: &str, dir: &Path) -> Result<usize> {
        let tree = self.repo.find_commit(Oid::from_str(id)?)?.tree()?;
        let mut n = 0;
        let mut err = None;
        tree.walk(git2::TreeWalkMode::PreOrder, |root, entry| {
            if entry.kind() != Some(ObjectType::Blob) {
                return git2::TreeWalkResult::Ok;
            }
            let rel = format!("{root}{}", entry.name().unwrap_or(""));
            let write = || -> Result<()> {
                let blob = self.repo.find_blob(entry.id())?;
                let p = dir.join(&rel);
                if let Some(parent) = p.parent() {
                    std::fs::create_dir_all(parent).map_err(io(parent))?;
                }
                std::fs::write(&p, blob.content()).map_err(io(&p))
            };
            match write() {
                Ok(()) => n += 1,
                Err(e) => {
                    err = Some(e);
                    return git2::TreeWalkResult::Abort;
                }
            }
            git2::TreeWalkResult::Ok
        })?;
        match err {
            Some(e) => Err(e),
            None => Ok(n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pr_numbers() {
        assert_eq!(parse_pr_number("Fix parser (#123)"), Some(123));
        assert_eq!(parse_pr_number("Merge pull request #45 from a/b\n\nbody"), Some(45));
        assert_eq!(parse_pr_number("Add x\n\nSee merge request team/app!7"), Some(7));
        assert_eq!(parse_pr_number("Mention #9 in passing"), None);
        assert_eq!(parse_pr_number("Fix (#12) later in the line"), None);
    }

    #[test]
    fn blame_of_unsaved_text_follows_its_lines_and_skips_uncommitted_ones() {
        let fx = patois_testkit::Fixture::git();
        fx.write("a.rs", "fn one() {}\nfn two() {}\n");
        let first = fx.commit("one and two", "ann", 1_000);
        fx.write("a.rs", "fn one() {}\nfn two() {}\nfn three() {}\n");
        let second = fx.commit("three", "bob", 2_000);
        let repo = Repo::discover(fx.root()).unwrap().unwrap();
        assert_eq!(repo.blame_lines("a.rs", None, (3, 3)).unwrap(), vec![second.clone()]);
        // Two new lines typed at the top: `three` is now line 5, lines 1-2 are nobody's.
        let unsaved = "// new\n// new\nfn one() {}\nfn two() {}\nfn three() {}\n";
        assert_eq!(repo.blame_lines("a.rs", Some(unsaved), (5, 5)).unwrap(), vec![second]);
        assert_eq!(repo.blame_lines("a.rs", Some(unsaved), (3, 4)).unwrap(), [first]);
        assert!(repo.blame_lines("a.rs", Some(unsaved), (1, 2)).unwrap().is_empty());
        let everything = repo.blame_lines("a.rs", None, (1, u32::MAX)).unwrap();
        assert_eq!(everything.len(), 2, "a range past the end is the rest of the file");
    }

    #[test]
    fn a_commit_whose_blob_is_missing_is_listed_without_line_counts() {
        let fx = patois_testkit::Fixture::git();
        fx.write("a.rs", "fn one() {}\n");
        fx.commit("one", "ann", 1_000);
        fx.write("a.rs", "fn one() {}\nfn two() {}\n");
        let second = fx.commit("two", "bob", 2_000);
        // As in a partial clone: the second version's blob is not in the object store.
        let id = blob_id(b"fn one() {}\nfn two() {}\n");
        std::fs::remove_file(fx.root().join(".git/objects").join(&id[..2]).join(&id[2..])).unwrap();
        let repo = Repo::discover(fx.root()).unwrap().unwrap();
        let walk = repo.commits_since(None).unwrap();
        assert_eq!(walk.commits.len(), 2);
        let c = &walk.commits[0];
        assert_eq!(c.id, second);
        assert_eq!(
            (c.files[0].path.as_str(), c.files[0].added, c.files[0].removed),
            ("a.rs", 0, 0)
        );
        assert_eq!(walk.commits[1].files[0].added, 1, "the readable commit keeps its counts");
    }

    #[test]
    fn blob_id_matches_git() {
        // `printf 'hello\n' | git hash-object --stdin`
        assert_eq!(blob_id(b"hello\n"), "ce013625030ba8dba906f756967f9e9ca394464a");
    }
}
