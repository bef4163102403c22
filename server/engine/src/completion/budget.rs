//! The latency budget: the model's measured speed on this machine, and how much prompt a
//! completion can afford so that its first line arrives within `latency_budget_ms`.

use patois_generate::{Backend, GenOptions, Mode};
use patois_prompt::FimOrder;
use serde::{Deserialize, Serialize};
use std::sync::Mutex;

/// The model's speed as measured here: at load, then from every completion.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Speed {
    /// Prompt tokens evaluated per second.
    pub prefill_tokens_per_s: f64,
    /// Tokens generated per second.
    pub decode_tokens_per_s: f64,
}

/// How much a new measurement moves the estimate: a busy machine shows within a few requests.
const WEIGHT: f64 = 0.3;
/// Fewer new prompt tokens than this say more about a request's fixed costs than about
/// prefill speed (with 16, the estimate here fell to half of llama.cpp's speed).
const MIN_PREFILL_SAMPLE: usize = 64;
/// Tokens a first line takes, for the decode share of the budget.
pub(crate) const FIRST_LINE_TOKENS: usize = 10;
/// The smallest prompt worth sending: the cursor's few lines and the FIM markers.
pub(crate) const MIN_WINDOW: usize = 96;

/// The running estimate of [`Speed`], and the speed measured when the model loaded.
#[derive(Default)]
pub(crate) struct SpeedMeter {
    speed: Mutex<Option<Speed>>,
    at_load: Mutex<Option<Speed>>,
}

impl SpeedMeter {
    pub(crate) fn get(&self) -> Option<Speed> {
        *crate::lock(&self.speed)
    }

    /// The speed measured when the model loaded (or when it was installed): what sizes the
    /// prompt's largest window, which must not move with every request (the model's cache
    /// of it would be lost).
    pub(crate) fn at_load(&self) -> Option<Speed> {
        *crate::lock(&self.at_load)
    }

    /// Replaces the estimate (a new model, or a speed given by a test).
    pub(crate) fn set(&self, speed: Option<Speed>) {
        *crate::lock(&self.speed) = speed;
        *crate::lock(&self.at_load) = speed;
    }

    /// Replaces the speed that sizes the largest prompt (see [`SpeedMeter::at_load`]).
    pub(crate) fn set_at_load(&self, speed: Speed) {
        *crate::lock(&self.at_load) = Some(speed);
    }

    /// Folds in one completion: `new_tokens` prefilled in `prefill_ms`, `decoded` tokens
    /// in `decode_ms`. Samples too small to measure leave their part unchanged.
    pub(crate) fn record(
        &self,
        new_tokens: usize,
        prefill_ms: f64,
        decoded: usize,
        decode_ms: f64,
    ) {
        let prefill = (new_tokens >= MIN_PREFILL_SAMPLE && prefill_ms > 0.0)
            .then(|| new_tokens as f64 * 1e3 / prefill_ms);
        let decode = (decoded >= 2 && decode_ms > 0.0).then(|| decoded as f64 * 1e3 / decode_ms);
        let mut speed = crate::lock(&self.speed);
        let blend = |old: f64, new: Option<f64>| match new {
            Some(new) => old * (1.0 - WEIGHT) + new * WEIGHT,
            None => old,
        };
        *speed = match (*speed, prefill, decode) {
            (Some(s), p, d) => Some(Speed {
                prefill_tokens_per_s: blend(s.prefill_tokens_per_s, p),
                decode_tokens_per_s: blend(s.decode_tokens_per_s, d),
            }),
            (None, Some(p), Some(d)) => {
                Some(Speed { prefill_tokens_per_s: p, decode_tokens_per_s: d })
            }
            (None, _, _) => None,
        };
    }
}

/// How long one batch of a prefill nobody waits for may take: the request that stops it
/// loses at most this much of its work.
const BACKGROUND_SLICE_MS: f64 = 40.0;

/// The smallest background batch: fewer tokens per batch waste most of the CPU.
pub(crate) const MIN_BACKGROUND_BATCH: usize = 8;

/// Prompt tokens a keystroke makes the model read again in a warm prompt: the key's (its
/// word tokenized anew), and in prefix-suffix-middle order the suffix after it (short
/// under a budget).
fn keystroke_tokens(order: FimOrder) -> usize {
    match order {
        FimOrder::PrefixFirst => super::BUDGET_SUFFIX + 2,
        FimOrder::SuffixFirst => 2,
    }
}

/// How many latency budgets the largest prompt under the budget may take to prefill from
/// an empty cache: the warm-ups that run while the user pauses fill it within the first
/// lines typed in a new place. `patois bench typing --blocks` on the tuning half (the 0.5B
/// here, about 215 prompt tokens/s at load, budget 1,000 ms) saved the most keystrokes
/// with a 336-token prompt, about 1.6 budgets: click 23.9%, cobra 29.2%, against 24.1% and
/// 24.9% with 256 tokens, 18.0% and 21.6% with 592, and 19.9% and 23.9% with the settings'
/// 976.
const WARM_BUDGETS: f64 = 1.6;

/// The largest prompt under a budget is never smaller than this: in fewer tokens no
/// retrieved item fits beside the cursor's lines. On a slow machine the warm-ups (the
/// cursor resting, the pause at a line's start) fill it while prompts cut to the budget
/// answer. `patois bench typing --blocks` on the tuning half with the slow class emulated
/// (AVX2 only, one core: 102 prompt tokens/s, where 1.6 budgets are 128 tokens) saved
/// click 25.6% / 29.8% / 31.6% and cobra 30.5% / 29.7% / 34.1% with 128, 256 and 384.
const MIN_WARM_WINDOW: usize = 384;

impl Speed {
    /// The largest prompt under a latency budget of `budget_ms`, in tokens: what this
    /// machine prefills in [`WARM_BUDGETS`] budgets, in steps of [`super::WINDOW_STEP`]
    /// (at least [`MIN_WARM_WINDOW`]).
    pub(crate) fn warm_window(&self, budget_ms: u64) -> usize {
        let tokens = self.prefill_tokens_per_s * budget_ms as f64 / 1e3 * WARM_BUDGETS;
        (tokens as usize / super::WINDOW_STEP * super::WINDOW_STEP).max(MIN_WARM_WINDOW)
    }

    /// Prompt tokens per batch of a background prefill: what this machine reads in
    /// [`BACKGROUND_SLICE_MS`] (at least [`MIN_BACKGROUND_BATCH`], at most 64).
    pub(crate) fn background_batch(&self) -> usize {
        ((self.prefill_tokens_per_s * BACKGROUND_SLICE_MS / 1e3) as usize)
            .clamp(MIN_BACKGROUND_BATCH, 64)
    }

    /// Milliseconds from a keystroke to a first line of ghost text, the prompt otherwise
    /// in the model's cache: what decides whether a model is fast enough here.
    pub fn keystroke_ms(&self, order: FimOrder) -> f64 {
        let prefill = keystroke_tokens(order) as f64 / self.prefill_tokens_per_s.max(1e-3);
        let decode = FIRST_LINE_TOKENS as f64 / self.decode_tokens_per_s.max(1e-3);
        (prefill + decode) * 1e3
    }
}

/// The longest a first line after a keystroke may take for a model to keep up with typing:
/// at 150 ms per key, a model slower than about a key and a half is overtaken by the next
/// keys more often than its ghost text is shown (`patois bench typing` on the tuning half
/// measured the 0.5B, about 200 ms here, saving more keystrokes than the 1.5B, about 320).
pub const KEEPS_UP_MS: f64 = 250.0;

/// Whether a model of this speed suits this machine.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fit {
    /// A first line after a keystroke within the budget and fast enough to keep up with
    /// typing (or no budget at all).
    Fits,
    /// Over the latency budget.
    OverBudget,
    /// Within the budget, but too slow to keep up with typing ([`KEEPS_UP_MS`]).
    FallsBehind,
}

impl Fit {
    /// How a model whose first line after a keystroke takes `keystroke_ms` (see
    /// [`Speed::keystroke_ms`]) fits a latency budget of `budget_ms` (0: none).
    pub fn of(keystroke_ms: f64, budget_ms: u64) -> Fit {
        if budget_ms == 0 {
            Fit::Fits
        } else if keystroke_ms > budget_ms as f64 {
            Fit::OverBudget
        } else if keystroke_ms > KEEPS_UP_MS {
            Fit::FallsBehind
        } else {
            Fit::Fits
        }
    }
}

impl Speed {
    /// How a model of this speed fits a latency budget of `budget_ms` (0: none) with
    /// prompts in `order`.
    pub fn fit(&self, budget_ms: u64, order: FimOrder) -> Fit {
        Fit::of(self.keystroke_ms(order), budget_ms)
    }
}

/// Loads the model at `path` as the engine would and measures it (see [`calibrate`]).
pub fn measure_model(path: &std::path::Path) -> crate::Result<Speed> {
    let model_error = |message: String| crate::Error::Model { path: path.to_path_buf(), message };
    let g = patois_generate::load_backend(path, patois_generate::BackendKind::Auto)
        .map_err(|e| model_error(e.to_string()))?;
    calibrate(g.as_ref()).ok_or_else(|| model_error("too short a completion to measure".into()))
}

/// What the budget allows one completion, given what is left of it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Allowance {
    /// New prompt tokens (not in the model's cache) that can be prefilled in time.
    pub new_tokens: usize,
    /// Milliseconds left for decoding once the prefill is done.
    pub decode_ms: f64,
}

impl Speed {
    /// How many new prompt tokens fit in `left_ms`, keeping time for a first line of
    /// `line_tokens` tokens (never fewer than [`MIN_WINDOW`]).
    pub(crate) fn allowance(&self, left_ms: f64, line_tokens: usize) -> Allowance {
        let decode_ms = line_tokens as f64 * 1e3 / self.decode_tokens_per_s.max(1e-3);
        let prefill_ms = (left_ms - decode_ms).max(0.0);
        let fits = (prefill_ms * self.prefill_tokens_per_s / 1e3) as usize;
        Allowance { new_tokens: fits.max(MIN_WINDOW), decode_ms }
    }
}

/// Code to measure with: about 150 tokens that end inside an expression, so that the
/// model goes on writing.
const CALIBRATION: &str = "use std::collections::HashMap;\n\n\
/// Counts how often each word occurs in `text`, ignoring case.\n\
pub fn word_counts(text: &str) -> HashMap<String, usize> {\n\
    let mut counts = HashMap::new();\n\
    for word in text.split_whitespace() {\n\
        let word = word.trim_matches(|c: char| !c.is_alphanumeric()).to_lowercase();\n\
        if word.is_empty() {\n\
            continue;\n\
        }\n\
        *counts.entry(word).or_insert(0) += 1;\n\
    }\n\
    counts\n\
}\n\n\
/// The `n` most frequent words, most frequent first.\n\
pub fn top_words(text: &str, n: usize) -> Vec<(String, usize)> {\n\
    let mut all: Vec<(String, usize)> = word_counts(text).into_iter().collect();\n\
    all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));\n\
    let total: usize = all.iter().map(|(_, c)| c";

/// Measures a local model on a short prompt of code, after one untimed warm-up (the
/// first decode maps the weights in): the speed the budget starts from until completions
/// refine it. The model's cache is left empty. No stop rule of code applies: a model that
/// closes the expression at once is measured as well as one that writes on.
pub(crate) fn calibrate(g: &dyn Backend) -> Option<Speed> {
    let never = || false;
    let opts = GenOptions { max_tokens: 8, mode: Mode::Prose, ..Default::default() };
    let warm_up = GenOptions { max_tokens: 2, ..opts.clone() };
    let _ = g.complete("fn main() {\n", "", &warm_up, &never);
    g.clear_cache();
    // Twice the code: about 300 tokens, so that the prefill dominates its fixed costs.
    let c = g.complete(&CALIBRATION.repeat(2), "", &opts, &never).ok();
    g.clear_cache();
    let c = c?;
    let meter = SpeedMeter::default();
    meter.record(c.prompt_tokens, c.prefill_ms, c.tokens, c.decode_ms);
    meter.get()
}

#[cfg(test)]
mod tests {
    use super::{measure_model, Speed, SpeedMeter, CALIBRATION, MIN_WARM_WINDOW, MIN_WINDOW};
    use patois_generate::write::{make_constant_gguf, tiny_config};

    #[test]
    fn a_model_that_closes_the_expression_at_once_is_measured() {
        // The 1.5B model answers the calibration code with `)`: a block's stop rule would
        // end it after one token, too few to measure decoding.
        let dir = patois_testkit::Fixture::plain();
        let path = dir.root().join("closes.gguf");
        let texts = std::iter::repeat_n(CALIBRATION, 10);
        make_constant_gguf(&path, texts, &tiny_config(400), ")").unwrap();
        let speed = measure_model(&path).expect("measured");
        assert!(speed.prefill_tokens_per_s > 0.0 && speed.decode_tokens_per_s > 0.0);
    }

    #[test]
    fn the_estimate_follows_the_measurements() {
        let m = SpeedMeter::default();
        m.record(4, 10.0, 5, 100.0);
        assert_eq!(m.get(), None, "too few prompt tokens to measure prefill");
        m.record(100, 1000.0, 10, 500.0);
        assert_eq!(m.get(), Some(Speed { prefill_tokens_per_s: 100.0, decode_tokens_per_s: 20.0 }));
        m.record(100, 500.0, 1, 1.0);
        let s = m.get().unwrap();
        assert!((s.prefill_tokens_per_s - 130.0).abs() < 1e-9, "{s:?}");
        assert_eq!(s.decode_tokens_per_s, 20.0, "one decoded token does not count");
    }

    #[test]
    fn a_slow_machine_affords_a_smaller_prompt() {
        let fast = Speed { prefill_tokens_per_s: 340.0, decode_tokens_per_s: 55.0 };
        let slow = Speed { prefill_tokens_per_s: 90.0, decode_tokens_per_s: 27.0 };
        let (f, s) = (fast.allowance(1000.0, 10), slow.allowance(1000.0, 10));
        assert!(f.new_tokens > 2 * s.new_tokens, "{f:?} {s:?}");
        assert_eq!(slow.allowance(100.0, 10).new_tokens, MIN_WINDOW, "never below the minimum");
    }

    #[test]
    fn a_model_fits_when_it_answers_a_keystroke_within_the_budget_and_keeps_up() {
        use super::Fit;
        use patois_prompt::FimOrder::SuffixFirst;
        let small = Speed { prefill_tokens_per_s: 215.0, decode_tokens_per_s: 52.0 };
        let large = Speed { prefill_tokens_per_s: 94.0, decode_tokens_per_s: 33.0 };
        assert_eq!(small.fit(1000, SuffixFirst), Fit::Fits);
        assert_eq!(large.fit(1000, SuffixFirst), Fit::FallsBehind, "about 320 ms a line");
        assert_eq!(large.fit(200, SuffixFirst), Fit::OverBudget);
        assert_eq!(large.fit(0, SuffixFirst), Fit::Fits, "no budget, no limit");
    }

    #[test]
    fn the_largest_prompt_under_a_budget_is_what_the_machine_warms_in_time() {
        let here = Speed { prefill_tokens_per_s: 283.0, decode_tokens_per_s: 57.0 };
        assert_eq!(here.warm_window(1000), 448, "about 1.6 budgets of prefill, in steps");
        assert_eq!(here.warm_window(2000), 896, "a longer budget, a longer prompt");
        let slow = Speed { prefill_tokens_per_s: 90.0, decode_tokens_per_s: 27.0 };
        assert_eq!(slow.warm_window(1000), MIN_WARM_WINDOW, "room for retrieved context");
    }

    #[test]
    fn background_batches_take_about_the_same_time_on_any_machine() {
        let fast = Speed { prefill_tokens_per_s: 800.0, decode_tokens_per_s: 55.0 };
        let slow = Speed { prefill_tokens_per_s: 90.0, decode_tokens_per_s: 27.0 };
        assert_eq!(fast.background_batch(), 32);
        assert_eq!(slow.background_batch(), 8, "never below the smallest useful batch");
        let fastest = Speed { prefill_tokens_per_s: 1e5, ..fast };
        assert_eq!(fastest.background_batch(), 64);
    }
}
