//! The engine's structs → the wire types of [`crate::ext`].

use crate::ext::{
    AskResult, AskSource, Citation, ContextItem, DriftReport, ExplainEntry, ExplainResult,
    ExplainSection, ModelReport, StatusReport,
};
use patois_engine::{CommitsSince, Drift};

pub(crate) fn citation(c: &patois_engine::Citation) -> Citation {
    Citation {
        path: c.path.clone(),
        start_line: c.start_line,
        end_line: c.end_line,
        commit: c.commit.clone(),
        pr: c.pr,
    }
}

pub(crate) fn context_item(it: &patois_engine::Item) -> ContextItem {
    ContextItem {
        source: it.source,
        citation: citation(&it.citation),
        title: it.title.clone(),
        text: it.text.clone(),
        reason: it.score.reason.clone(),
        score: it.score.fused,
    }
}

pub(crate) fn explanation(x: patois_engine::Explanation) -> ExplainResult {
    let sections = x
        .sections
        .iter()
        .map(|s| ExplainSection {
            title: s.title,
            entries: s
                .entries
                .iter()
                .map(|e| ExplainEntry {
                    citation: citation(&e.citation),
                    label: e.label.clone(),
                    excerpt: e.excerpt.clone(),
                })
                .collect(),
        })
        .collect();
    ExplainResult {
        symbol: x.symbol,
        kind: x.kind,
        sections,
        summary: x.summary,
        summary_model: x.summary_model,
        markdown: x.markdown,
    }
}

fn drift(d: Drift) -> DriftReport {
    let (commits_since, history_rewritten) = match d.commits_since {
        CommitsSince::Count(n) => (Some(n), false),
        CommitsSince::HistoryRewritten => (None, true),
    };
    DriftReport {
        trained_at: d.trained_at,
        commits_since,
        history_rewritten,
        changed_share: d.changed_share,
        retrain_advised: d.retrain_advised,
        advice: d.advice,
    }
}

pub(crate) fn status(s: patois_engine::Status, indexing: bool) -> StatusReport {
    StatusReport {
        root: s.root,
        index_dir: s.index_dir,
        files: s.files,
        commits: s.commits,
        head: s.head,
        indexing,
        model: s.model.map(|m| ModelReport {
            path: m.path,
            format: m.format,
            arch: m.arch,
            parameters: m.parameters,
            context: m.context,
            backend: m.backend,
        }),
        model_path: s.model_path,
        model_source: s.model_source,
        model_error: s.model_error,
        prompts_go_to: s.prompts_go_to,
        remote_note: s.remote_note,
        adapter: s.adapter,
        adapter_strength: s.adapter_strength,
        adapter_note: s.adapter_note,
        drift: s.drift.map(drift),
        speed: s.speed.map(|v| crate::ext::SpeedReport {
            prefill: v.prefill_tokens_per_s,
            decode: v.decode_tokens_per_s,
        }),
        latency_budget_ms: s.latency_budget_ms,
        prompt_window: s.prompt_window,
        full_prompt_window: s.full_prompt_window,
        model_runs: Some(s.runs),
        training: None,
    }
}

pub(crate) fn asked(x: patois_engine::Asked, root: &std::path::Path) -> AskResult {
    let markdown = x.markdown(root);
    let sources = x
        .sources
        .iter()
        .map(|s| AskSource { citation: citation(&s.citation), label: s.label.clone() })
        .collect();
    AskResult {
        answer: x.answer.as_ref().map(|a| a.text.clone()),
        cited: x.answer.as_ref().map(|a| a.cited.clone()).unwrap_or_default(),
        sources,
        model: x.answer.map(|a| a.model),
        note: x.note,
        markdown,
    }
}
