//! The on-disk index of a repository: tree-sitter chunks and symbols, git history
//! and imported PRs in one tantivy index, plus a manifest that makes updates
//! incremental. [`Index::update`] writes; the `search` methods read the live index.

mod error;
mod manifest;
mod schema;
mod search;
mod walk;

use error::io;
pub use error::{Error, Result};
pub use manifest::{FileEntry, FileHistory, Manifest, MANIFEST_FILE, SCHEMA_VERSION};
pub use schema::{for_each_token, CodeTokenizer, Fields, CODE_TOKENIZER};
pub use search::{ChunkHit, CommitHit, PrHit, SymbolHit};
pub use walk::{contains_secret, is_secret_name, looks_binary, walk, Candidate, SkipReason};

use patois_syntax::{analyze, Analysis, ChunkLimits};
use patois_vcs::{blob_id, CommitInfo, Repo};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{PoisonError, RwLock};
use std::time::Instant;
use tantivy::schema::Term;
use tantivy::{doc, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument};

/// The default index folder, under the repository root.
pub const DEFAULT_DIR: &str = ".patois";

/// What an update indexes and how.
#[derive(Debug, Clone)]
pub struct UpdateOptions {
    /// Files larger than this are skipped (`too_large`).
    pub max_file_size: u64,
    pub chunk_limits: ChunkLimits,
    /// The JSON printed by `gh pr list --json number,title,body,files,comments`.
    pub prs: Option<PathBuf>,
    /// Walk git history (on by default).
    pub history: bool,
    /// Indexing threads for tantivy.
    pub threads: usize,
    /// Cut every file into plain line windows instead of syntax chunks (the
    /// baseline of `patois bench retrieval`).
    pub line_windows_only: bool,
}

impl Default for UpdateOptions {
    fn default() -> Self {
        UpdateOptions {
            max_file_size: 1 << 20,
            chunk_limits: ChunkLimits::default(),
            prs: None,
            history: true,
            threads: std::thread::available_parallelism().map(|n| n.get().min(4)).unwrap_or(1),
            line_windows_only: false,
        }
    }
}

/// Progress callbacks, so that the library stays free of terminal code.
pub trait Progress: Sync {
    fn phase(&self, _name: &str, _total: u64) {}
    fn inc(&self, _n: u64) {}
}

/// Progress that reports nothing.
pub struct Quiet;
impl Progress for Quiet {}

/// What an update did.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Report {
    /// Files in the index after the update.
    pub files: usize,
    pub chunks: u64,
    pub symbols: u64,
    pub commits: u64,
    pub prs: usize,
    pub added: Vec<String>,
    pub updated: Vec<String>,
    pub removed: Vec<String>,
    pub unchanged: usize,
    /// Files parsed in this run and their total size.
    pub parsed: usize,
    pub parsed_bytes: u64,
    pub new_commits: u64,
    /// History was rewritten since the last run and re-indexed whole.
    pub history_rewritten: bool,
    /// The folder is not in a git repository, or the repository has no commits yet.
    pub no_history: Option<String>,
    pub skipped: BTreeMap<String, SkipReason>,
    pub skipped_by_reason: BTreeMap<SkipReason, usize>,
    /// Why the index was rebuilt from scratch, when it was.
    pub rebuilt: Option<String>,
    pub seconds: f64,
    pub files_seconds: f64,
    pub history_seconds: f64,
}

/// An open index of one repository.
pub struct Index {
    root: PathBuf,
    dir: PathBuf,
    index: tantivy::Index,
    reader: IndexReader,
    fields: Fields,
    manifest: RwLock<Manifest>,
    /// Why opening rebuilt the index (corrupt, old schema), for the next report.
    rebuilt: RwLock<Option<String>>,
}

/// The root patois indexes for `dir`: the working tree of the git repository that
/// contains it, else `dir` itself.
pub fn repo_root(dir: &Path) -> Result<PathBuf> {
    let dir = dir.canonicalize().map_err(io("opening (does it exist?)", dir))?;
    Ok(match Repo::discover(&dir)? {
        Some(r) => r.workdir().canonicalize().unwrap_or(dir),
        None => dir,
    })
}

/// Adds the default index folder to `.git/info/exclude` of the repository at
/// `root` (if it is one), so git never lists it.
pub fn exclude_default_dir(root: &Path) -> Result<()> {
    if let Some(repo) = Repo::discover(root)? {
        repo.exclude(&format!("/{DEFAULT_DIR}/"))?;
    }
    Ok(())
}

fn open_tantivy(dir: &Path) -> Result<(tantivy::Index, IndexReader)> {
    let index = tantivy::Index::open_in_dir(dir)?;
    let (expected, _) = schema::build();
    if index.schema() != expected {
        return Err(Error::Invalid {
            path: dir.join("meta.json"),
            message: "its schema differs from this patois".into(),
        });
    }
    index.tokenizers().register(CODE_TOKENIZER, CodeTokenizer);
    let reader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into()?;
    // Opening every segment reader catches missing or truncated segment files.
    let searcher = reader.searcher();
    for seg in searcher.segment_readers() {
        seg.get_store_reader(0).map_err(io("reading a segment of", dir))?;
    }
    Ok((index, reader))
}

impl Index {
    /// Opens the index in `dir` for the repository at `root`, creating it when
    /// absent and rebuilding it (with the reason kept for the report) when it is
    /// corrupt or was written by another schema version.
    pub fn open(root: &Path, dir: &Path) -> Result<Index> {
        std::fs::create_dir_all(dir)
            .map_err(io("creating the index folder (--index-dir puts it elsewhere)", dir))?;
        let (_, fields) = schema::build();
        let has_meta = dir.join("meta.json").exists();
        let opened = if has_meta {
            Manifest::load(dir).and_then(|m| open_tantivy(dir).map(|(i, r)| (i, r, m)))
        } else {
            Err(Error::Invalid { path: dir.to_path_buf(), message: "no index yet".into() })
        };
        let (index, reader, manifest, rebuilt) = match opened {
            Ok((i, r, m)) => (i, r, m, None),
            Err(e) => {
                let reason = if has_meta {
                    Some(format!("rebuilt the index in {}: {e}", dir.display()))
                } else {
                    None
                };
                let (i, r) = Self::create(dir)?;
                (i, r, Manifest { schema_version: SCHEMA_VERSION, ..Default::default() }, reason)
            }
        };
        Ok(Index {
            root: root.to_path_buf(),
            dir: dir.to_path_buf(),
            index,
            reader,
            fields,
            manifest: RwLock::new(manifest),
            rebuilt: RwLock::new(rebuilt),
        })
    }

    fn create(dir: &Path) -> Result<(tantivy::Index, IndexReader)> {
        // Only our own files are removed, so a mistaken --index-dir loses nothing else.
        for entry in std::fs::read_dir(dir).map_err(io("reading", dir))? {
            let entry = entry.map_err(io("reading", dir))?;
            let name = entry.file_name().to_string_lossy().to_string();
            let ours = name == "meta.json"
                || name == ".managed.json"
                || name.starts_with(MANIFEST_FILE)
                || name.ends_with(".idx")
                || name.ends_with(".pos")
                || name.ends_with(".term")
                || name.ends_with(".store")
                || name.ends_with(".fast")
                || name.ends_with(".fieldnorm")
                || name.ends_with(".del");
            if ours && entry.file_type().is_ok_and(|t| t.is_file()) {
                let path = entry.path();
                std::fs::remove_file(&path).map_err(io("removing", &path))?;
            }
        }
        let (schema, _) = schema::build();
        let index = tantivy::Index::create_in_dir(dir, schema)?;
        index.tokenizers().register(CODE_TOKENIZER, CodeTokenizer);
        let reader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into()?;
        Ok((index, reader))
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    pub fn fields(&self) -> &Fields {
        &self.fields
    }
    pub fn reader(&self) -> &IndexReader {
        &self.reader
    }
    /// A snapshot of the manifest.
    pub fn manifest(&self) -> Manifest {
        self.manifest.read().unwrap_or_else(PoisonError::into_inner).clone()
    }
    /// Runs `f` on the manifest without copying it.
    pub fn with_manifest<T>(&self, f: impl FnOnce(&Manifest) -> T) -> T {
        f(&self.manifest.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn writer(&self, threads: usize) -> Result<IndexWriter> {
        let threads = threads.max(1);
        self.index.writer_with_num_threads(threads, threads * 40_000_000).map_err(|e| match e {
            tantivy::TantivyError::LockFailure(..) => Error::Locked { dir: self.dir.clone() },
            e => Error::Tantivy(e),
        })
    }

    /// Brings the index up to date with the working tree and history: parses only
    /// files whose content changed, deletes removed ones, adds only new commits.
    pub fn update(&self, opts: &UpdateOptions, progress: &dyn Progress) -> Result<Report> {
        let t0 = Instant::now();
        let mut report = Report {
            rebuilt: self.rebuilt.write().unwrap_or_else(PoisonError::into_inner).take(),
            ..Default::default()
        };
        let mut manifest = self.manifest();
        let mut writer = self.writer(opts.threads)?;
        self.update_files(&mut writer, &mut manifest, &mut report, opts, progress)?;
        report.files_seconds = t0.elapsed().as_secs_f64();

        // History.
        let th = Instant::now();
        if opts.history {
            self.update_history(&mut writer, &mut manifest, &mut report, progress)?;
        }
        if let Some(prs) = &opts.prs {
            self.import_prs(&mut writer, &mut manifest, prs)?;
        }
        report.history_seconds = th.elapsed().as_secs_f64();

        writer.commit()?;
        writer.wait_merging_threads()?;
        manifest.save(&self.dir)?;
        self.reader.reload()?;
        report.files = manifest.files.len();
        report.chunks = manifest.files.values().map(|e| e.chunks as u64).sum();
        report.symbols = manifest.files.values().map(|e| e.symbols as u64).sum();
        report.commits = manifest.commits;
        report.prs = manifest.prs.len();
        *self.manifest.write().unwrap_or_else(PoisonError::into_inner) = manifest;
        report.seconds = t0.elapsed().as_secs_f64();
        Ok(report)
    }

    /// Indexes the files that changed since the manifest, removes those that are gone,
    /// and records why files were skipped.
    fn update_files(
        &self,
        writer: &mut IndexWriter,
        manifest: &mut Manifest,
        report: &mut Report,
        opts: &UpdateOptions,
        progress: &dyn Progress,
    ) -> Result<()> {
        let f = self.fields;
        let candidates = walk(&self.root, &self.dir);
        progress.phase("files", candidates.len() as u64);
        let outcomes: Vec<(Candidate, Outcome)> = candidates
            .into_par_iter()
            .map(|c| {
                let o = examine(&c, manifest.files.get(&c.rel), opts);
                progress.inc(1);
                (c, o)
            })
            .collect();
        let mut seen = HashSet::new();
        let mut skipped = BTreeMap::new();
        for (c, outcome) in outcomes {
            match outcome {
                Outcome::Unchanged { mtime_ns } => {
                    seen.insert(c.rel.clone());
                    if let Some(e) = manifest.files.get_mut(&c.rel) {
                        e.mtime_ns = mtime_ns;
                    }
                    report.unchanged += 1;
                }
                Outcome::Skipped(reason) => {
                    skipped.insert(c.rel, reason);
                }
                Outcome::Parsed { entry, analysis } => {
                    seen.insert(c.rel.clone());
                    if manifest.files.contains_key(&c.rel) {
                        writer.delete_term(Term::from_field_text(f.file, &c.rel));
                        report.updated.push(c.rel.clone());
                    } else {
                        report.added.push(c.rel.clone());
                    }
                    report.parsed += 1;
                    report.parsed_bytes += entry.size;
                    for d in documents(&f, &c.rel, &analysis) {
                        writer.add_document(d)?;
                    }
                    manifest.files.insert(c.rel, entry);
                }
            }
        }
        let gone: Vec<String> =
            manifest.files.keys().filter(|p| !seen.contains(*p)).cloned().collect();
        for path in gone {
            writer.delete_term(Term::from_field_text(f.file, &path));
            manifest.files.remove(&path);
            report.removed.push(path);
        }
        for reason in skipped.values() {
            *report.skipped_by_reason.entry(*reason).or_default() += 1;
        }
        manifest.skipped = skipped.clone();
        report.skipped = skipped;
        Ok(())
    }

    fn update_history(
        &self,
        writer: &mut IndexWriter,
        m: &mut Manifest,
        report: &mut Report,
        progress: &dyn Progress,
    ) -> Result<()> {
        let f = self.fields;
        let Some(repo) = Repo::discover(&self.root)? else {
            report.no_history = Some(format!(
                "{} is not in a git repository: no history indexed",
                self.root.display()
            ));
            return Ok(());
        };
        let walk = repo.commits_since(m.head.as_deref())?;
        if walk.rewritten {
            writer.delete_term(Term::from_field_text(f.kind, "commit"));
            m.history.clear();
            m.commits = 0;
            report.history_rewritten = true;
        }
        let head = repo.head()?;
        if head.is_none() {
            report.no_history =
                Some("the repository has no commits yet: no history indexed".into());
        }
        progress.phase("commits", walk.commits.len() as u64);
        // Oldest first, so the newest commit ends up as each file's last change.
        for c in walk.commits.iter().rev() {
            writer.delete_term(Term::from_field_text(f.key, &format!("commit:{}", c.id)));
            writer.add_document(commit_document(&f, c))?;
            for fc in &c.files {
                let h = m.history.entry(fc.path.clone()).or_default();
                h.last_commit = c.id.clone();
                h.last_time = c.time;
                if !c.is_merge {
                    h.churn += 1;
                }
                h.authors.retain(|a| a != &c.author);
                h.authors.insert(0, c.author.clone());
            }
            progress.inc(1);
        }
        report.new_commits = walk.commits.len() as u64;
        m.commits += walk.commits.len() as u64;
        m.head = head;
        Ok(())
    }

    fn import_prs(&self, writer: &mut IndexWriter, m: &mut Manifest, path: &Path) -> Result<()> {
        let f = self.fields;
        let text = std::fs::read_to_string(path).map_err(io("reading the PR export", path))?;
        let prs: Vec<GhPr> = serde_json::from_str(&text).map_err(|e| Error::Invalid {
            path: path.to_path_buf(),
            message: format!(
                "not the JSON of `gh pr list --json number,title,body,files,comments` ({e})"
            ),
        })?;
        for pr in prs {
            writer.delete_term(Term::from_field_text(f.key, &format!("pr:{}", pr.number)));
            let mut d = doc!(
                f.kind => "pr",
                f.key => format!("pr:{}", pr.number),
                f.pr => pr.number,
                f.title => pr.title.clone(),
            );
            let mut text = format!("{}\n\n{}", pr.title, pr.body);
            for c in &pr.comments {
                text.push_str(&format!("\n\n{}: {}", c.author.login, c.body));
            }
            d.add_text(f.text, &text);
            for file in &pr.files {
                d.add_text(f.touched, &file.path);
            }
            writer.add_document(d)?;
            if !m.prs.contains(&pr.number) {
                m.prs.push(pr.number);
            }
        }
        m.prs.sort_unstable();
        Ok(())
    }
}

#[derive(Deserialize)]
struct GhPr {
    number: u64,
    #[serde(default)]
    title: String,
    #[serde(default)]
    body: String,
    #[serde(default)]
    files: Vec<GhFile>,
    #[serde(default)]
    comments: Vec<GhComment>,
}
#[derive(Deserialize)]
struct GhFile {
    path: String,
}
#[derive(Deserialize)]
struct GhComment {
    #[serde(default)]
    author: GhAuthor,
    #[serde(default)]
    body: String,
}
#[derive(Deserialize, Default)]
struct GhAuthor {
    #[serde(default)]
    login: String,
}

enum Outcome {
    Unchanged { mtime_ns: i128 },
    Skipped(SkipReason),
    Parsed { entry: FileEntry, analysis: Analysis },
}

/// Reads and classifies one file; parses it only when its content changed.
fn examine(c: &Candidate, old: Option<&FileEntry>, opts: &UpdateOptions) -> Outcome {
    if is_secret_name(&c.rel) {
        return Outcome::Skipped(SkipReason::Secret);
    }
    if c.size > opts.max_file_size {
        return Outcome::Skipped(SkipReason::TooLarge);
    }
    if let Some(old) = old {
        if old.size == c.size && old.mtime_ns == c.mtime_ns && c.mtime_ns >= 0 {
            return Outcome::Unchanged { mtime_ns: c.mtime_ns };
        }
    }
    let Ok(bytes) = std::fs::read(&c.abs) else { return Outcome::Skipped(SkipReason::Unreadable) };
    if bytes.len() as u64 > opts.max_file_size {
        return Outcome::Skipped(SkipReason::TooLarge);
    }
    let blob = blob_id(&bytes);
    if old.is_some_and(|o| o.blob == blob) {
        return Outcome::Unchanged { mtime_ns: c.mtime_ns };
    }
    if looks_binary(&bytes) {
        return Outcome::Skipped(SkipReason::Binary);
    }
    let Ok(text) = String::from_utf8(bytes) else { return Outcome::Skipped(SkipReason::NonUtf8) };
    if contains_secret(&text) {
        return Outcome::Skipped(SkipReason::Secret);
    }
    let analysis = if opts.line_windows_only {
        Analysis {
            chunks: patois_syntax::line_windows(&text, 0, &opts.chunk_limits),
            ..Default::default()
        }
    } else {
        analyze(Path::new(&c.rel), &text, &opts.chunk_limits)
    };
    Outcome::Parsed {
        entry: FileEntry {
            blob,
            size: text.len() as u64,
            mtime_ns: c.mtime_ns,
            language: analysis.language.map(str::to_string),
            chunks: analysis.chunks.len() as u32,
            symbols: analysis.symbols.len() as u32,
        },
        analysis,
    }
}

fn documents(f: &Fields, path: &str, a: &Analysis) -> Vec<TantivyDocument> {
    let lang = a.language.unwrap_or("text");
    let mut out = Vec::with_capacity(a.chunks.len() + a.symbols.len());
    for c in &a.chunks {
        let mut d = doc!(
            f.kind => "chunk",
            f.file => path,
            f.lang => lang,
            f.sym_kind => c.kind.as_str(),
            f.start_line => c.start_line as u64,
            f.end_line => c.end_line as u64,
            f.text => c.text.as_str(),
        );
        if let Some(n) = &c.name {
            d.add_text(f.name, n);
        }
        out.push(d);
    }
    for s in &a.symbols {
        let mut d = doc!(
            f.kind => "symbol",
            f.file => path,
            f.lang => lang,
            f.name => s.name.as_str(),
            f.name_exact => s.name.as_str(),
            f.sym_kind => s.kind.as_str(),
            f.start_line => s.start_line as u64,
            f.end_line => s.end_line as u64,
            f.signature => s.signature.as_str(),
            f.text => format!("{}\n{}", s.doc.as_deref().unwrap_or(""), s.signature),
        );
        if let Some(scope) = &s.scope {
            d.add_text(f.scope, scope);
        }
        if let Some(doc) = &s.doc {
            d.add_text(f.doc, doc);
        }
        out.push(d);
    }
    out
}

fn commit_document(f: &Fields, c: &CommitInfo) -> TantivyDocument {
    let mut d = doc!(
        f.kind => "commit",
        f.key => format!("commit:{}", c.id),
        f.commit => c.id.as_str(),
        f.author => c.author.as_str(),
        f.time => c.time,
        f.title => c.summary(),
        f.text => c.message.as_str(),
        f.stats => serde_json::to_string(&c.files).unwrap_or_default(),
    );
    if let Some(pr) = c.pr {
        d.add_u64(f.pr, pr);
    }
    for fc in &c.files {
        d.add_text(f.touched, &fc.path);
    }
    d
}
