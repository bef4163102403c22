//! The benchmark corpus (`benchmarks/corpus.toml`): public repositories pinned to a commit
//! and split once into a tuning half and a report half; `bench retrieval --corpus` runs
//! each repository of a half and reports per repository and overall, with standard errors.

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Half {
    /// Where changes are tuned.
    Tuning,
    /// Where changes are judged.
    Report,
    /// Both halves.
    All,
}

/// `--corpus FILE --repos DIR --half H` of the benchmarks that take the corpus.
#[derive(clap::Args)]
pub struct CorpusArgs {
    /// Run every repository of a half of this corpus file (`benchmarks/corpus.toml`)
    /// instead of DIR, and report per repository and overall with standard errors.
    #[arg(long)]
    pub corpus: Option<PathBuf>,
    /// Where `scripts/corpus.sh` cloned the corpus.
    #[arg(long, default_value = "target/corpus")]
    pub repos: PathBuf,
    /// Which half of the corpus.
    #[arg(long, value_enum, default_value = "tuning")]
    pub half: Half,
}

#[derive(Debug, Deserialize)]
struct CorpusFile {
    repo: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
pub struct Entry {
    /// `owner/name` on GitHub.
    pub name: String,
    pub commit: String,
    pub language: String,
    pub half: Half,
}

impl Entry {
    /// Where `scripts/corpus.sh` cloned it under `repos`.
    pub fn dir(&self, repos: &Path) -> PathBuf {
        repos.join(self.name.replace('/', "+"))
    }
}

/// The repositories of `half` in `file`, each checked out under `repos` at its commit.
pub fn load(file: &Path, repos: &Path, half: Half) -> Result<Vec<Entry>> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let corpus: CorpusFile = toml::from_str(&text)
        .with_context(|| format!("{} is not a corpus file", file.display()))?;
    let chosen: Vec<Entry> =
        corpus.repo.into_iter().filter(|e| half == Half::All || e.half == half).collect();
    for e in &chosen {
        let head = patois_vcs::Repo::discover(&e.dir(repos))
            .ok()
            .flatten()
            .and_then(|r| r.first_parent_chain(1).ok())
            .and_then(|c| c.into_iter().next());
        if head.as_deref() != Some(e.commit.as_str()) {
            bail!(
                "{} is not at {} under {}: run scripts/corpus.sh {}",
                e.name,
                &e.commit[..10.min(e.commit.len())],
                repos.display(),
                repos.display()
            );
        }
    }
    Ok(chosen)
}

/// The repositories a benchmark runs on, with their names: the corpus half `args` names,
/// else `dir` alone.
pub fn repos(args: &CorpusArgs, dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    Ok(match &args.corpus {
        Some(file) => load(file, &args.repos, args.half)?
            .into_iter()
            .map(|e| (e.name.clone(), e.dir(&args.repos)))
            .collect(),
        None => vec![(dir.display().to_string(), dir.to_path_buf())],
    })
}

/// A share with its standard error: `hits` of `n`.
pub fn share(hits: usize, n: usize) -> (f64, f64) {
    if n == 0 {
        return (0.0, 0.0);
    }
    let p = hits as f64 / n as f64;
    (p, (p * (1.0 - p) / n as f64).sqrt())
}

/// The mean of `values` with its standard error (the repositories as the sample).
pub fn mean(values: &[f64]) -> (f64, f64) {
    let k = values.len() as f64;
    if values.is_empty() {
        return (0.0, 0.0);
    }
    let m = values.iter().sum::<f64>() / k;
    if values.len() < 2 {
        return (m, 0.0);
    }
    let var = values.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (k - 1.0);
    (m, (var / k).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_and_means_carry_their_standard_errors() {
        assert_eq!(share(0, 0), (0.0, 0.0));
        let (p, se) = share(25, 100);
        assert_eq!(p, 0.25);
        assert!((se - (0.25f64 * 0.75 / 100.0).sqrt()).abs() < 1e-12);
        let (m, se) = mean(&[0.2, 0.4, 0.6]);
        assert!((m - 0.4).abs() < 1e-12);
        assert!((se - 0.2 / 3f64.sqrt()).abs() < 1e-12, "{se}");
        assert_eq!(mean(&[0.5]), (0.5, 0.0));
    }

    #[test]
    fn the_corpus_in_the_repository_is_split_and_pinned() {
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../benchmarks/corpus.toml");
        let corpus: CorpusFile = toml::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        let count = |h: Half| corpus.repo.iter().filter(|e| e.half == h).count();
        assert!(corpus.repo.len() >= 10, "at least 10 repositories");
        assert!(count(Half::Tuning) >= 5 && count(Half::Report) >= 5);
        assert_eq!(count(Half::All), 0, "each repository is in one half");
        for lang in ["rust", "python", "go"] {
            assert!(corpus.repo.iter().filter(|e| e.language == lang).count() >= 2, "{lang}");
        }
        let web = |e: &&Entry| e.language == "typescript" || e.language == "javascript";
        assert!(corpus.repo.iter().filter(web).count() >= 2);
        assert!(corpus.repo.iter().all(|e| e.commit.len() == 40), "pinned to full commit ids");
    }
}
