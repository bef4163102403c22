//! `patois bench complete --multiline`: the blocks the last N commits added where, with
//! the block removed, the cursor sits in an empty body (what users see as a multi-line
//! ghost text). The model is asked there as `bench complete` asks, with the settings'
//! limits; scored on the whole block's edit similarity and on where it ended: within one
//! line of the real end, too long, or too short (and how many of those stopped at the
//! settings' `max_tokens`).

use super::blocks::{all_blocks, Block};
use super::complete::{edit_similarity, TimeSplit};
use super::corpus::{self, share, Half};
use super::generate::pct;
use anyhow::Result;
use patois_engine::{Engine, Run, Settings, Ticket};
use patois_generate::{decide_mode, Mode, StopReason};
use std::path::{Path, PathBuf};

/// Blocks longer than this are asked for up to it.
const MAX_BODY_LINES: usize = 40;

/// Scores of the blocks, per task in order.
#[derive(Default)]
pub(crate) struct BlockScore {
    sim: Vec<f64>,
    /// Lines written less lines wanted.
    overshoot: Vec<i64>,
    /// Whether the model stopped at the token limit.
    capped: Vec<bool>,
    ms: Vec<f64>,
}

/// The lines of a block as compared: trailing spaces and trailing empty lines left out.
fn normalized(text: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    lines
}

impl BlockScore {
    fn add(&mut self, got: &str, want: &str, capped: bool, ms: f64) {
        let (got, want) = (normalized(got), normalized(want));
        self.sim.push(edit_similarity(&got.join("\n"), &want.join("\n")));
        self.overshoot.push(got.len() as i64 - want.len() as i64);
        self.capped.push(capped);
        self.ms.push(ms);
    }

    fn extend(&mut self, other: &BlockScore) {
        self.sim.extend(&other.sim);
        self.overshoot.extend(&other.overshoot);
        self.capped.extend(&other.capped);
        self.ms.extend(&other.ms);
    }

    fn line(&self, label: &str) {
        let f = |(p, se): (f64, f64)| format!("{:.0}% ± {:.0}", p * 100.0, se * 100.0);
        let n = self.sim.len();
        let count =
            |keep: &dyn Fn(i64) -> bool| self.overshoot.iter().filter(|d| keep(**d)).count();
        let capped_short = self.overshoot.iter().zip(&self.capped).filter(|(d, c)| **d < -1 && **c);
        let (sim, sim_se) = corpus::mean(&self.sim);
        let mut ms = self.ms.clone();
        println!(
            "  {label:<24} {n:>3} blocks: block edit similarity {sim:.3} ± {sim_se:.3}; ends within one line {}, too long {}, too short {} ({} of them at max_tokens); p50 {:.0} ms",
            f(share(count(&|d| d.abs() <= 1), n)),
            f(share(count(&|d| d > 1), n)),
            f(share(count(&|d| d < -1), n)),
            capped_short.count(),
            if ms.is_empty() { f64::NAN } else { pct(&mut ms, 0.5) },
        );
    }
}

/// The blocks of the last `commits` commits of `dir` that leave an empty body, about
/// `max_tasks` of them spread evenly, each asked for once.
pub fn run(
    dir: &Path,
    commits: usize,
    max_tasks: usize,
    model: Option<PathBuf>,
) -> Result<BlockScore> {
    let mut split = TimeSplit::new(dir, commits, 0, "complete --multiline")?;
    let index = split.index()?;
    let mut settings = Settings::from_repo(&split.root).unwrap_or_default();
    if model.is_some() {
        settings.model = model;
    }
    let engine = Engine::new(index, settings);
    let bodies: Vec<Block> = all_blocks(&split.repo, &split.range, MAX_BODY_LINES)?
        .into_iter()
        .filter(|b| {
            b.stays_inside() && decide_mode(&b.path, &b.text, b.cursor()) == Mode::MultiLine
        })
        .collect();
    let step = (bodies.len() as f64 / max_tasks.max(1) as f64).max(1.0);
    let picked: Vec<usize> =
        (0..max_tasks.min(bodies.len())).map(|i| (i as f64 * step) as usize).collect();
    let mut score = BlockScore::default();
    for b in picked.iter().map(|&i| &bodies[i]) {
        let r = engine.complete_as(&b.path, &b.text, b.cursor(), &Ticket::detached(), Run::Full)?;
        score.add(&r.text, &b.written(), r.stop == StopReason::MaxTokens, r.ms.total);
        if super::verbose() {
            let (path, row, stop) = (&b.path, b.row + 1, r.stop);
            eprintln!("{path}:{row} ({stop:?})\n  want {:?}\n  got  {:?}", b.written(), r.text);
        }
    }
    score.line("model + retrieval");
    Ok(score)
}

/// [`run`] on each repository of `half` of the corpus in `file` (cloned under `repos`), then
/// all blocks pooled.
pub fn run_corpus(
    file: &Path,
    repos: &Path,
    half: Half,
    commits: usize,
    max_tasks: usize,
    model: Option<PathBuf>,
) -> Result<()> {
    let mut all = BlockScore::default();
    let mut rows = Vec::new();
    for e in corpus::load(file, repos, half)? {
        let score = run(&e.dir(repos), commits, max_tasks, model.clone())?;
        all.extend(&score);
        rows.push((e.name, score));
    }
    println!("\ncorpus {} ({half:?} half): multi-line blocks", file.display());
    for (name, score) in &rows {
        score.line(name);
    }
    all.line("all blocks pooled");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::BlockScore;

    #[test]
    fn a_block_ends_right_within_one_line_and_is_compared_without_trailing_space() {
        let mut s = BlockScore::default();
        s.add("a();  \nb();\n\n", "a();\nb();", false, 1.0);
        s.add("a();\nb();\nc();\nd();", "a();", false, 1.0);
        s.add("a();", "a();\nb();\nc();", true, 1.0);
        assert_eq!(s.sim[0], 1.0);
        assert_eq!(s.overshoot, [0, 3, -2]);
        assert_eq!(s.capped, [false, false, true]);
    }
}
