//! Completions: the cache of earlier ones ([`cache`]), typing into the last one, the
//! continuation found elsewhere, and the model's, with a prompt sized to the latency budget
//! ([`budget`]) and a generation that later keystrokes may join ([`jobs`]), warmed ahead
//! by prefills that typing pauses ([`warm`]); the text tidied for the ghost text
//! ([`postprocess`]).

pub(crate) mod budget;
pub(crate) mod cache;
pub(crate) mod jobs;
mod postprocess;
pub(crate) mod warm;

use crate::tally::RunRecord;
use crate::{lock, CompletionResult, Engine, Result, Settings, Ticket, Timings};
use budget::{FIRST_LINE_TOKENS, MIN_WINDOW};
use cache::{CacheKey, Shown};
use jobs::Job;
use patois_generate::{decide_mode, Backend, GenOptions, Mode, StopReason};
use patois_prompt::{build, FimOrder, Input, Limits, Prompt};
use patois_retrieve::{Citation, Item};
use postprocess::{rest_after_typing, tidy};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Who waits for a completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Run {
    /// The user, now: the latency budget sizes the prompt and stops decoding.
    Foreground,
    /// Nobody yet: prefill the full prompt only (the cache is warmed for the next request).
    Warm,
    /// Nobody yet: a completion computed ahead of its request (after an accepted ghost
    /// text, the one that follows it waits in the cache), no deadline. Under a budget its
    /// prompt is the one a request there would have, so that it reads the model's cache
    /// and leaves it of use.
    Ahead,
    /// The settings' full prompt and no deadline: asked for on the command line and in the
    /// quality benchmarks.
    Full,
}

/// How far below the line it was made for, in lines, a retrieval serves the requests under
/// the latency budget (within the same top-level item).
const REGION_LINES: u32 = 30;

/// Retrieval made for a cursor on `line`, in the top-level item starting at `item_start`.
#[derive(Clone)]
pub(crate) struct KeptItems {
    path: String,
    line: u32,
    item_start: u32,
    items: Vec<Item>,
}

impl KeptItems {
    /// Whether a request on `line` of `path` uses these items: on the same line; under the
    /// latency budget also on the lines below in the same top-level item (a person writing
    /// on), where retrieving again would change the prompt's beginning and cost the
    /// prefill of all of it at the next key.
    fn serves(&self, path: &str, line: u32, item_start: u32, run: Run) -> bool {
        let below = (self.line..self.line + REGION_LINES).contains(&line)
            && item_start == self.item_start
            && run != Run::Full;
        self.path == path && (line == self.line || below)
    }
}

/// Under a budget, the lines above the cursor count in steps of this many tokens when the
/// context is sized (see [`Limits::above_step`]): about ten lines of code.
const ABOVE_STEP: usize = 128;

/// Budget-cut windows are multiples of this many tokens.
const WINDOW_STEP: usize = 64;

/// The most suffix, in tokens, of a prompt under the latency budget: about the rest of the
/// line and the next one.
const BUDGET_SUFFIX: usize = 16;

/// A prompt sized for the latency budget.
struct Fitted {
    prompt: Prompt,
    /// The window it was built for, and the settings' window.
    window: usize,
    full: usize,
    deadline: Option<Instant>,
}

/// Registers a job for its document while it lives (see `jobs`).
struct RunningJob<'a> {
    engine: &'a Engine,
    path: &'a str,
    job: &'a Arc<Job>,
}

impl<'a> RunningJob<'a> {
    fn start(engine: &'a Engine, path: &'a str, job: &'a Arc<Job>) -> RunningJob<'a> {
        engine.start_job(path, job);
        RunningJob { engine, path, job }
    }
}

impl Drop for RunningJob<'_> {
    fn drop(&mut self) {
        self.engine.end_job(self.path, self.job);
    }
}

/// `first` and the lines `rest` after it (indented relative to it) as text inserted after
/// `indent`: each line after the first is indented by `indent` more; empty lines stay empty.
fn indented_block(first: String, rest: &[String], indent: &str) -> String {
    let mut block = first;
    for line in rest {
        block.push('\n');
        if !line.is_empty() {
            block.push_str(indent);
            block.push_str(line);
        }
    }
    block
}

/// A completion made without the model: `text` found elsewhere (or nothing, when the
/// request became stale before the model ran), `ms` after the request began.
fn without_model(
    text: String,
    stop: StopReason,
    citations: Vec<Citation>,
    t0: Instant,
) -> CompletionResult {
    let ms = t0.elapsed().as_secs_f64() * 1e3;
    CompletionResult {
        text,
        stop,
        mode: Mode::SingleLine,
        tokens: 0,
        prompt_tokens: 0,
        cache_hit_tokens: 0,
        cached: false,
        ms: Timings { retrieval: ms, total: ms, ..Default::default() },
        citations,
        prompt_window: 0,
        shrunk: false,
    }
}

/// The result of a request that became stale before the model ran.
fn cancelled_before_the_model(t0: Instant) -> CompletionResult {
    without_model(String::new(), StopReason::Cancelled, Vec::new(), t0)
}

/// Puts the items that were also in the previous prompt first, in their previous order:
/// the prompt then starts as before and the model's cache of that start is reused.
fn keep_order_of(items: &mut [Item], before: &[Item]) {
    let rank = |it: &Item| before.iter().position(|b| b.citation == it.citation);
    items.sort_by_key(|it| rank(it).unwrap_or(usize::MAX));
}

impl Engine {
    /// An inline completion at `cursor` (a byte offset in `text`), for the user waiting now.
    pub fn complete(
        &self,
        path: &str,
        text: &str,
        cursor: usize,
        ticket: &Ticket,
    ) -> Result<CompletionResult> {
        self.complete_as(path, text, cursor, ticket, Run::Foreground)
    }

    /// Prefills the prompt a completion at `cursor` would have, without the latency
    /// budget's limit, so that the next request there finds it in the model's cache.
    pub fn warm(&self, path: &str, text: &str, cursor: usize, ticket: &Ticket) -> Result<()> {
        self.complete_as(path, text, cursor, ticket, Run::Warm).map(|_| ())
    }

    /// [`Engine::complete`] for whoever `run` says waits for it.
    pub fn complete_as(
        &self,
        path: &str,
        text: &str,
        cursor: usize,
        ticket: &Ticket,
        run: Run,
    ) -> Result<CompletionResult> {
        self.check_document(path, text)?;
        let t0 = Instant::now();
        let cursor = text.floor_char_boundary(cursor);
        let (prefix, suffix) = text.split_at(cursor);
        let settings = self.settings();
        let key = CacheKey::new(path, prefix, suffix);
        // A warm-up is for the model's cache, which a cached answer does not fill.
        if run != Run::Warm {
            if let Some(hit) = self.cached(&key, prefix, suffix, &settings, t0) {
                return Ok(hit);
            }
        }
        // The rest of a line the document already has, as the user has begun it.
        if run != Run::Warm && settings.budget > 0 {
            let found = patois_retrieve::matching_line(&self.index, path, text, cursor);
            if let Some(found) = found.ok().flatten() {
                let result =
                    without_model(found.rest, StopReason::EndOfLine, vec![found.citation], t0);
                self.remember(key, prefix, suffix, &result);
                return Ok(result);
            }
        }
        // Typing on while the model writes: wait for the generation this text can still use.
        let stale = || ticket.is_cancelled();
        let foreground = run == Run::Foreground && settings.cache;
        if foreground && self.wait_for_job(path, prefix, suffix, &stale) {
            if stale() {
                return Ok(cancelled_before_the_model(t0));
            }
            if let Some(hit) = self.cached(&key, prefix, suffix, &settings, t0) {
                return Ok(hit);
            }
        }
        // Under a budget, the generation may outlive this request (see `jobs`).
        let job = (foreground && settings.latency_budget_ms > 0)
            .then(|| Job::new(prefix, suffix, self.tickets.version_of(path)));
        let _running = job.as_ref().map(|job| RunningJob::start(self, path, job));
        // A zero budget asks for no retrieved context: no continuation either.
        let continued =
            (settings.budget > 0).then(|| self.continue_existing(path, text, cursor, t0)).flatten();
        let result = match continued {
            Some(r) => r,
            None => self.generate(path, text, cursor, &settings, ticket, t0, run, job.as_ref())?,
        };
        if run != Run::Warm {
            self.remember(key, prefix, suffix, &result);
        }
        Ok(result)
    }

    /// A completion already made for this text: the same text, or the last completion
    /// with its beginning typed since.
    fn cached(
        &self,
        key: &CacheKey,
        prefix: &str,
        suffix: &str,
        settings: &Settings,
        t0: Instant,
    ) -> Option<CompletionResult> {
        if !settings.cache {
            return None;
        }
        let hit = lock(&self.completions).get(key);
        let mut hit = hit.or_else(|| self.typed_into_last(&key.path, prefix, suffix))?;
        hit.cached = true;
        hit.ms = Timings { total: t0.elapsed().as_secs_f64() * 1e3, ..Default::default() };
        Some(hit)
    }

    /// Keeps a completion for the same text later, and for typing into it.
    fn remember(&self, key: CacheKey, prefix: &str, suffix: &str, result: &CompletionResult) {
        if result.stop == StopReason::Cancelled {
            return;
        }
        if !result.text.trim().is_empty() {
            *lock(&self.last_shown) = Some(Shown {
                path: key.path.clone(),
                prefix: prefix.to_string(),
                suffix: suffix.to_string(),
                result: result.clone(),
            });
        }
        lock(&self.completions).insert(key, result.clone());
    }

    /// The model's completion at `cursor`, with the retrieved context in its prompt.
    #[allow(clippy::too_many_arguments)]
    fn generate(
        &self,
        path: &str,
        text: &str,
        cursor: usize,
        settings: &Settings,
        ticket: &Ticket,
        t0: Instant,
        run: Run,
        job: Option<&Arc<Job>>,
    ) -> Result<CompletionResult> {
        let (prefix, suffix) = text.split_at(cursor);
        // Warm-ups yield to this run from now on; a new warm-up ends the older ones.
        let _waited_for = (run == Run::Foreground).then(|| self.foreground_run());
        let warm = (run == Run::Warm).then(|| self.watch_warm(path, text, cursor));
        let g = self.load_model()?;
        if !settings.cache {
            g.clear_cache();
        }
        let items = self.items_for(path, text, cursor, settings.budget, run)?;
        // A job runs while the document can use it, a warm-up while it is of use and
        // nobody waits for the model; anything else while its ticket holds.
        let cancelled = || match (job, &warm) {
            (Some(job), _) => !self.job_wanted(path, job),
            (None, Some(warm)) => !self.warm_wanted(warm),
            (None, None) => ticket.is_cancelled(),
        };
        if cancelled() {
            return Ok(cancelled_before_the_model(t0));
        }
        let t_retrieval = t0.elapsed().as_secs_f64() * 1e3;
        let comment = patois_syntax::language_for_path(Path::new(path))
            .map(|l| l.line_comment)
            .unwrap_or("#");
        let input = Input { path, comment, prefix, suffix, items: &items };
        let fitted = self.fit_prompt(&g, &input, settings, t0, run);
        let prompt = fitted.prompt;
        // A warm-up prefills what typing on this line leaves as it is.
        let prompt_text = if warm.is_some() { &prompt.text[..prompt.stable] } else { &prompt.text };
        let t_prompt = t0.elapsed().as_secs_f64() * 1e3 - t_retrieval;
        let mode = decide_mode(path, text, cursor);
        let line_start = patois_types::line_start_at(prefix, prefix.len());
        let indent = prefix[line_start..].chars().take_while(|c| *c == ' ' || *c == '\t').count();
        let cut = fitted.window < fitted.full;
        let opts = GenOptions {
            max_tokens: if run == Run::Warm { 0 } else { settings.max_tokens },
            mode,
            indent,
            deadline: fitted.deadline,
            written: job.map(|j| j.written.clone()),
            cut,
            batch: warm.as_ref().map(|_| self.background_batch()),
            ..Default::default()
        };
        let fallback = settings.fallback_to_local;
        let c = self.run_model(&g, prompt_text, suffix, &opts, &cancelled, fallback)?;
        self.learn_from(run, &c, t_retrieval + t_prompt, fitted.window, &opts);
        let typed_indent_only = indent > 0 && prefix[line_start..].trim().is_empty();
        Ok(CompletionResult {
            text: tidy(c.text, typed_indent_only.then(|| &prefix[..line_start])),
            stop: c.stop,
            mode,
            tokens: c.tokens,
            prompt_tokens: c.prompt_tokens,
            cache_hit_tokens: c.cache_hit_tokens,
            cached: false,
            ms: Timings {
                retrieval: t_retrieval,
                prompt: t_prompt,
                prefill: c.prefill_ms,
                decode: c.decode_ms,
                total: t0.elapsed().as_secs_f64() * 1e3,
            },
            citations: prompt.citations,
            prompt_window: fitted.window,
            shrunk: cut,
        })
    }

    /// Keeps what a model run tells: its counts for the status, the measured speed, and
    /// the window an answer had.
    fn learn_from(
        &self,
        run: Run,
        c: &patois_generate::Completion,
        prepare_ms: f64,
        window: usize,
        opts: &GenOptions,
    ) {
        let record = RunRecord {
            prompt_tokens: c.prompt_tokens,
            cached_tokens: c.cache_hit_tokens,
            stop: c.stop,
            shrunk: opts.cut,
            prepare_ms,
            prefill_ms: c.prefill_ms,
            decode_ms: c.decode_ms,
        };
        self.runs.record(run, &record);
        // Small background batches read slower than the user's runs do: not measured.
        if c.stop != StopReason::Cancelled && opts.batch.is_none() {
            let new_tokens = c.prompt_tokens.saturating_sub(c.cache_hit_tokens);
            self.speed.record(new_tokens, c.prefill_ms, c.tokens, c.decode_ms);
        }
        if run == Run::Foreground {
            *lock(&self.last_window) = Some(window);
        }
    }

    /// The retrieved context for a completion at `cursor`: the last request's while the
    /// cursor stays in its place (see [`KeptItems`]), so that the prompt's beginning (and
    /// the model's cache of it) stays the same while typing; items also in the last prompt
    /// keep their place.
    fn items_for(
        &self,
        path: &str,
        text: &str,
        cursor: usize,
        budget: usize,
        run: Run,
    ) -> Result<Vec<Item>> {
        let line = patois_syntax::Lines::new(text).line(cursor);
        let item_start = patois_syntax::top_level_item(text, line).0;
        let last = lock(&self.last_items).clone();
        if let Some(kept) = last.as_ref().filter(|k| k.serves(path, line, item_start, run)) {
            return Ok(kept.items.clone());
        }
        let mut items = self.context(path, text, cursor, budget)?.items;
        if let Some(before) = last.filter(|k| k.path == path) {
            keep_order_of(&mut items, &before.items);
        }
        let kept = KeptItems { path: path.to_string(), line, item_start, items: items.clone() };
        *lock(&self.last_items) = Some(kept);
        Ok(items)
    }

    /// The prompt for `input`: the settings' window when the latency budget affords
    /// what of it is not in the model's cache at the measured speed, else the window
    /// the budget affords from scratch; with the decode deadline.
    fn fit_prompt(
        &self,
        g: &Arc<dyn Backend>,
        input: &Input,
        settings: &Settings,
        t0: Instant,
        run: Run,
    ) -> Fitted {
        let budget_ms = settings.latency_budget_ms;
        // Under a budget, in prefix-suffix-middle order, the suffix is short: it is computed
        // again after every keystroke, while the context and the prefix stay cached.
        let budgeted = budget_ms > 0 && matches!(run, Run::Foreground | Run::Warm | Run::Ahead);
        let full = self.full_window(settings, g.info().context, budgeted);
        let order = settings.fim_order;
        let suffix_cap =
            if budgeted && order == FimOrder::PrefixFirst { BUDGET_SUFFIX } else { usize::MAX };
        let build_at = |window| {
            let limits = Limits::for_window(window);
            let above_step = if budgeted { ABOVE_STEP } else { 1 };
            let suffix = limits.suffix.min(suffix_cap);
            let limits = Limits { suffix, above_step, order, ..limits };
            build(g.info().fim, input, limits, g.as_ref())
        };
        let prompt = build_at(full);
        let (Some(speed), true) = (self.speed.get(), run == Run::Foreground && budget_ms > 0)
        else {
            return Fitted { prompt, window: full, full, deadline: None };
        };
        let deadline = Some(t0 + Duration::from_millis(budget_ms));
        let left_ms = budget_ms as f64 - t0.elapsed().as_secs_f64() * 1e3;
        let line = FIRST_LINE_TOKENS.min(settings.max_tokens);
        let allowed = speed.allowance(left_ms, line).new_tokens;
        let new = g.uncached_tokens(&prompt.text, false);
        if new <= allowed || allowed >= full {
            return Fitted { prompt, window: full, full, deadline };
        }
        // The last answer's window while its prompt is still mostly cached (typing on in
        // the same place): a larger prompt than a cold one could afford.
        let last = *lock(&self.last_window);
        if let Some(window) = last.filter(|w| (allowed + 1..full).contains(w)) {
            let prompt = build_at(window);
            if g.uncached_tokens(&prompt.text, true) <= allowed {
                return Fitted { prompt, window, full, deadline };
            }
        }
        // Windows in steps, so that the next request's prompt is likely the same.
        let window = (allowed / WINDOW_STEP * WINDOW_STEP).max(MIN_WINDOW);
        Fitted { prompt: build_at(window), window, full, deadline }
    }

    /// The largest prompt a completion may have: the settings' window, under the latency
    /// budget at most what this machine prefills while the user pauses (see
    /// [`budget::Speed::warm_window`]).
    pub(crate) fn full_window(&self, settings: &Settings, context: usize, budgeted: bool) -> usize {
        let window = settings.prompt_window(context);
        match self.speed.at_load().filter(|_| budgeted && settings.latency_budget_ms > 0) {
            Some(speed) => window.min(speed.warm_window(settings.latency_budget_ms)),
            None => window,
        }
    }

    /// The line that follows the cursor's two previous lines elsewhere in the repository,
    /// when they are found together (see [`patois_retrieve::continuation`]): no model runs.
    fn continue_existing(
        &self,
        path: &str,
        text: &str,
        cursor: usize,
        t0: Instant,
    ) -> Option<CompletionResult> {
        let found = patois_retrieve::continuation(&self.index, path, text, cursor).ok()??;
        if found.rest.is_empty() || decide_mode(path, text, cursor) != Mode::MultiLine {
            return Some(without_model(
                found.line,
                StopReason::EndOfLine,
                vec![found.citation],
                t0,
            ));
        }
        // In an empty body: the whole block found there, indented as the cursor's line.
        let line_start = patois_types::line_start_at(text, cursor);
        let block = indented_block(found.line, &found.rest, &text[line_start..cursor]);
        let mut citation = found.citation;
        citation.end_line += found.rest.len() as u32;
        let mut result = without_model(block, StopReason::EndOfBlock, vec![citation], t0);
        result.mode = Mode::MultiLine;
        Some(result)
    }

    /// The rest of the last completion shown in `path` when the user has since typed its
    /// beginning: the ghost text stays, shortened, without running the model.
    fn typed_into_last(&self, path: &str, prefix: &str, suffix: &str) -> Option<CompletionResult> {
        let last = lock(&self.last_shown);
        let last = last.as_ref().filter(|l| l.path == path)?;
        let rest =
            rest_after_typing(&last.prefix, &last.suffix, &last.result.text, prefix, suffix)?;
        Some(CompletionResult { text: rest.to_string(), tokens: 0, ..last.result.clone() })
    }
}

#[cfg(test)]
mod tests {
    use super::{indented_block, keep_order_of, KeptItems, Run, REGION_LINES};
    use patois_retrieve::{Citation, Item, Score, Source};

    #[test]
    fn a_found_block_is_indented_as_the_cursor_line() {
        let rest = ["    y();".to_string(), String::new(), "}".to_string()];
        let block = indented_block("if x {".into(), &rest, "        ");
        assert_eq!(block, "if x {\n            y();\n\n        }");
    }

    fn item(path: &str) -> Item {
        Item {
            source: Source::Definition,
            citation: Citation {
                path: path.into(),
                start_line: 1,
                end_line: 2,
                commit: None,
                pr: None,
            },
            title: String::new(),
            text: String::new(),
            score: Score { source_rank: 0, source_score: 1.0, fused: 0.1, reason: String::new() },
        }
    }

    #[test]
    fn items_of_the_previous_prompt_keep_their_place_new_ones_follow_in_rank_order() {
        let before = [item("a"), item("b"), item("c")];
        let mut now = [item("x"), item("c"), item("y"), item("a")];
        keep_order_of(&mut now, &before);
        let order: Vec<&str> = now.iter().map(|i| i.citation.path.as_str()).collect();
        assert_eq!(order, ["a", "c", "x", "y"]);
    }

    #[test]
    fn retrieval_serves_the_lines_below_in_the_same_item_only_under_the_budget() {
        let kept = KeptItems { path: "a.rs".into(), line: 10, item_start: 5, items: Vec::new() };
        assert!(kept.serves("a.rs", 10, 5, Run::Full), "the same line");
        assert!(kept.serves("a.rs", 12, 5, Run::Foreground), "writing on below");
        assert!(kept.serves("a.rs", 12, 5, Run::Warm));
        assert!(!kept.serves("a.rs", 12, 5, Run::Full), "no budget: retrieved afresh");
        assert!(!kept.serves("a.rs", 9, 5, Run::Foreground), "a line above");
        assert!(!kept.serves("a.rs", 12, 11, Run::Foreground), "another top-level item");
        assert!(!kept.serves("a.rs", 10 + REGION_LINES, 5, Run::Foreground), "too far below");
        assert!(!kept.serves("b.rs", 10, 5, Run::Foreground), "another document");
    }
}
