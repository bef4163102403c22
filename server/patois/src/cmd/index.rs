//! `patois index`.

use crate::IndexLocation;
use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};
use patois_index::{
    exclude_default_dir, repo_root, Index, Progress, Report, UpdateOptions, DEFAULT_DIR,
};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    /// A folder inside the repository [default: the current folder].
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    #[command(flatten)]
    pub location: IndexLocation,
    /// Import PRs from the JSON of `gh pr list --json number,title,body,files,comments`.
    #[arg(long, value_name = "FILE.json")]
    pub prs: Option<PathBuf>,
    /// Print a machine-readable summary instead of text.
    #[arg(long)]
    pub json: bool,
    /// List every skipped file with its reason and every changed file.
    #[arg(long, short)]
    pub verbose: bool,
    /// Skip files larger than this many bytes.
    #[arg(long, default_value_t = 1 << 20)]
    pub max_file_size: u64,
}

/// Opens (or creates) the index for the repository containing `dir`. The default
/// location, `.patois/`, is added to `.git/info/exclude` so git never sees it.
pub fn open_index(dir: &Path, location: &IndexLocation) -> Result<Index> {
    let root = repo_root(dir)?;
    let index_dir = match &location.index_dir {
        Some(d) => d.clone(),
        None => {
            exclude_default_dir(&root)?;
            root.join(DEFAULT_DIR)
        }
    };
    Ok(Index::open(&root, &index_dir)?)
}

/// An indicatif bar on a terminal; nothing otherwise.
pub struct Bar(Option<ProgressBar>);

impl Bar {
    pub fn new(enabled: bool) -> Bar {
        Bar((enabled && std::io::stderr().is_terminal()).then(|| {
            let b = ProgressBar::new(0);
            b.set_style(
                ProgressStyle::with_template("{prefix:>8} [{bar:30}] {pos}/{len} {elapsed}")
                    .unwrap()
                    .progress_chars("=> "),
            );
            b
        }))
    }
    pub fn finish(&self) {
        if let Some(b) = &self.0 {
            b.finish_and_clear();
        }
    }
}

impl Progress for Bar {
    fn phase(&self, name: &str, total: u64) {
        if let Some(b) = &self.0 {
            b.set_prefix(name.to_string());
            b.set_length(total);
            b.set_position(0);
        }
    }
    fn inc(&self, n: u64) {
        if let Some(b) = &self.0 {
            b.inc(n);
        }
    }
}

pub fn run(args: Args) -> Result<()> {
    let index = open_index(&args.dir, &args.location)?;
    let bar = Bar::new(!args.json);
    let opts = UpdateOptions {
        max_file_size: args.max_file_size,
        prs: args.prs.clone(),
        ..Default::default()
    };
    let report = index.update(&opts, &bar);
    bar.finish();
    let report = report?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&json_summary(&report, &index))?);
    } else {
        print_report(&report, &index, args.verbose);
    }
    Ok(())
}

fn json_summary(r: &Report, index: &Index) -> serde_json::Value {
    serde_json::json!({
        "root": index.root(),
        "index_dir": index.dir(),
        "files": r.files,
        "chunks": r.chunks,
        "symbols": r.symbols,
        "commits": r.commits,
        "prs": r.prs,
        "added": r.added,
        "updated": r.updated,
        "removed": r.removed,
        "unchanged": r.unchanged,
        "new_commits": r.new_commits,
        "history_rewritten": r.history_rewritten,
        "no_history": r.no_history,
        "skipped": r.skipped_by_reason.iter().map(|(k, v)| (k.as_str(), *v)).collect::<std::collections::BTreeMap<_, _>>(),
        "rebuilt": r.rebuilt,
        "seconds": r.seconds,
    })
}

fn print_report(r: &Report, index: &Index, verbose: bool) {
    if let Some(why) = &r.rebuilt {
        eprintln!("patois: {why}");
    }
    if let Some(why) = &r.no_history {
        eprintln!("patois: {why}");
    }
    if r.history_rewritten {
        eprintln!("patois: history was rewritten since the last run; re-indexed all commits");
    }
    if verbose {
        for (path, reason) in &r.skipped {
            println!("skipped {path}: {}", reason.as_str());
        }
        for (label, paths) in
            [("added", &r.added), ("updated", &r.updated), ("removed", &r.removed)]
        {
            for p in paths.iter() {
                println!("{label} {p}");
            }
        }
    }
    let changed = |v: &Vec<String>, what: &str| {
        if v.is_empty() {
            String::new()
        } else {
            format!(", {} {what}", v.len())
        }
    };
    println!(
        "indexed {} in {:.2}s: {} files ({} parsed{}{}{}, {} unchanged), {} chunks, {} symbols, {} commits ({} new){}",
        index.root().display(),
        r.seconds,
        r.files,
        r.parsed,
        changed(&r.added, "added"),
        changed(&r.updated, "updated"),
        changed(&r.removed, "removed"),
        r.unchanged,
        r.chunks,
        r.symbols,
        r.commits,
        r.new_commits,
        if r.prs > 0 { format!(", {} PRs", r.prs) } else { String::new() },
    );
    if !r.skipped_by_reason.is_empty() {
        let parts: Vec<_> =
            r.skipped_by_reason.iter().map(|(k, v)| format!("{v} {}", k.as_str())).collect();
        println!(
            "skipped {} files: {}{}",
            r.skipped.len(),
            parts.join(", "),
            if verbose { "" } else { " (--verbose lists them)" }
        );
    }
}
