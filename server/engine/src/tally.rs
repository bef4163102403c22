//! How the model's runs went since the server started: how much of each prompt the
//! cache held, and how runs ended. The status shows it; `patois bench typing` reports it.

use crate::Run;
use patois_generate::StopReason;
use serde::{Deserialize, Serialize};
use std::sync::Mutex;

/// Runs of one kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunCounts {
    pub runs: u64,
    /// Prompt tokens of all runs, and those not in the model's cache (computed).
    pub prompt_tokens: u64,
    pub computed_tokens: u64,
    /// Runs stopped by a newer request, an edit or a cancellation.
    pub cancelled: u64,
    /// Runs stopped by the latency budget's deadline.
    pub timed_out: u64,
    /// Runs whose prompt the budget made smaller than the settings allow.
    pub shrunk: u64,
    /// Milliseconds spent retrieving and building prompts, prefilling and decoding.
    pub prepare_ms: f64,
    pub prefill_ms: f64,
    pub decode_ms: f64,
}

/// Model runs by who waited for them (see [`Run`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelRuns {
    /// Completions someone asked for.
    pub answers: RunCounts,
    /// Prefills of a prompt while the user reads.
    pub warm: RunCounts,
    /// Completions computed ahead of their request.
    pub ahead: RunCounts,
}

/// One finished run.
pub(crate) struct RunRecord {
    pub(crate) prompt_tokens: usize,
    pub(crate) cached_tokens: usize,
    pub(crate) stop: StopReason,
    pub(crate) shrunk: bool,
    pub(crate) prepare_ms: f64,
    pub(crate) prefill_ms: f64,
    pub(crate) decode_ms: f64,
}

#[derive(Default)]
pub(crate) struct RunTally(Mutex<ModelRuns>);

impl RunTally {
    pub(crate) fn record(&self, run: Run, r: &RunRecord) {
        let mut all = crate::lock(&self.0);
        let counts = match run {
            Run::Foreground | Run::Full => &mut all.answers,
            Run::Warm => &mut all.warm,
            Run::Ahead => &mut all.ahead,
        };
        counts.runs += 1;
        counts.prompt_tokens += r.prompt_tokens as u64;
        counts.computed_tokens += r.prompt_tokens.saturating_sub(r.cached_tokens) as u64;
        counts.cancelled += u64::from(r.stop == StopReason::Cancelled);
        counts.timed_out += u64::from(r.stop == StopReason::TimeLimit);
        counts.shrunk += u64::from(r.shrunk);
        counts.prepare_ms += r.prepare_ms;
        counts.prefill_ms += r.prefill_ms;
        counts.decode_ms += r.decode_ms;
    }

    pub(crate) fn get(&self) -> ModelRuns {
        *crate::lock(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_counted_by_who_waited() {
        let t = RunTally::default();
        let rec = |stop, shrunk| RunRecord {
            prompt_tokens: 100,
            cached_tokens: 70,
            stop,
            shrunk,
            prepare_ms: 1.0,
            prefill_ms: 2.0,
            decode_ms: 3.0,
        };
        t.record(Run::Foreground, &rec(StopReason::EndOfLine, true));
        t.record(Run::Foreground, &rec(StopReason::Cancelled, false));
        t.record(Run::Warm, &rec(StopReason::MaxTokens, false));
        let all = t.get();
        assert_eq!(
            all.answers,
            RunCounts {
                runs: 2,
                prompt_tokens: 200,
                computed_tokens: 60,
                cancelled: 1,
                timed_out: 0,
                shrunk: 1,
                prepare_ms: 2.0,
                prefill_ms: 4.0,
                decode_ms: 6.0,
            }
        );
        assert_eq!(all.warm.runs, 1);
        assert_eq!(all.ahead, RunCounts::default());
    }
}
