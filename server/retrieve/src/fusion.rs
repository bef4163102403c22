//! Fusion: each source's ranked list becomes one list by weighted reciprocal rank, then
//! items whose lines a better item already covers are dropped and the rest cut to the
//! budget.

use crate::{Budget, Citation, Item, Options, Score, Source};

/// Ranks the sources' lists together and keeps what fits in `budget`.
pub(crate) fn fuse(
    mut lists: Vec<(Source, Vec<Item>)>,
    opts: &Options,
    budget: &Budget,
) -> Vec<Item> {
    for (source, items) in lists.iter_mut() {
        let w = opts.weights.iter().find(|(s, _)| s == source).map(|(_, w)| *w).unwrap_or(1.0);
        for (rank, it) in items.iter_mut().enumerate() {
            it.score.source_rank = rank;
            it.score.fused = w / (opts.rrf_k + rank as f32 + 1.0);
        }
    }
    let mut all: Vec<Item> = lists.into_iter().flat_map(|(_, v)| v).collect();
    all.sort_by(|a, b| b.score.fused.total_cmp(&a.score.fused));
    let mut out: Vec<Item> = Vec::new();
    let mut used = 0;
    for it in all {
        // An edit shows what changed, not the lines: nothing covers it.
        let shown = |it: &Item| {
            out.iter().any(|o| o.source != Source::Edit && covers(&o.citation, &it.citation))
        };
        if it.source != Source::Edit && shown(&it) {
            continue;
        }
        let cost = (budget.count)(&it.text) + (budget.count)(&it.citation.to_string());
        if used + cost > budget.limit {
            continue;
        }
        used += cost;
        out.push(it);
    }
    out
}

/// Whether `a` already shows the file lines `b` cites (history items cite commits, edits
/// a change).
fn covers(a: &Citation, b: &Citation) -> bool {
    a.path == b.path
        && a.commit.is_none()
        && b.commit.is_none()
        && a.start_line <= b.start_line
        && b.end_line <= a.end_line
}

/// An item as a source proposes it; fusion fills in its rank and fused score.
pub(crate) fn item(
    source: Source,
    citation: Citation,
    title: String,
    text: String,
    source_score: f32,
    reason: String,
) -> Item {
    Item {
        source,
        citation,
        title,
        text,
        score: Score { source_rank: 0, source_score, fused: 0.0, reason },
    }
}
