//! Decoding with drafts taken from the text so far (prompt lookup): when the last
//! [`NGRAM`] tokens occurred earlier in the prompt or the completion, the tokens that
//! followed them there are evaluated in the same llama.cpp batch as the token the model
//! just picked. While the model then picks exactly those tokens, their logits are already
//! computed and no decode runs. The logits at a position depend only on the tokens before
//! it, and a draft is used only while every token before it was the model's own pick, so
//! the text is what one token at a time writes, up to rounding: llama.cpp sums a batch in
//! another order, and where two tokens are nearly tied the pick can differ (one block of
//! 47 in `bench complete --multiline`). Off by default: on 2 CPU cores a batch of five
//! tokens costs nearly what the drafts save (README, "Typing in time").

use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::token::LlamaToken;
use std::collections::VecDeque;

/// Tokens that must repeat for a draft.
const NGRAM: usize = 3;

/// Tokens drafted at most per decode: `PATOIS_LLAMA_DRAFT`, else 0 (no drafting).
pub(crate) fn max_draft() -> usize {
    std::env::var("PATOIS_LLAMA_DRAFT").ok().and_then(|d| d.parse().ok()).unwrap_or(0)
}

/// The logits after the token at index `i` of the last batch.
pub(crate) fn logits_at(ctx: &LlamaContext, i: i32) -> Result<Tensor> {
    let l = ctx.get_logits_ith(i);
    Ok(Tensor::from_slice(l, l.len(), &Device::Cpu)?)
}

/// One sequence's decoding, token by token as the model picks them, with drafts.
pub(crate) struct Drafting<'h> {
    seq: i32,
    /// The prompt and the tokens taken so far: what the sequence's cache holds in order
    /// (drafts not yet taken are in the cache after them, and not here).
    history: &'h mut Vec<LlamaToken>,
    /// Drafts evaluated and not yet taken, each with the logits after it.
    ready: VecDeque<(LlamaToken, Tensor)>,
    max_draft: usize,
    batch: LlamaBatch<'h>,
}

impl<'h> Drafting<'h> {
    /// Decoding after `history` (already in the cache of `seq`), drafting at most
    /// `max_draft` tokens at a time.
    pub fn new(seq: i32, history: &'h mut Vec<LlamaToken>, max_draft: usize) -> Drafting<'h> {
        let batch = LlamaBatch::new(max_draft + 1, 1);
        Drafting { seq, history, ready: VecDeque::new(), max_draft, batch }
    }

    /// Adds `next`, the token the model picked, and returns the logits after it.
    pub fn forward(&mut self, ctx: &mut LlamaContext, next: u32) -> Result<Tensor> {
        let t = LlamaToken(next as i32);
        let pos = self.history.len();
        if self.ready.front().is_some_and(|(d, _)| *d == t) {
            let (_, logits) = self.ready.pop_front().context("a draft was ready")?;
            self.history.push(t);
            return Ok(logits);
        }
        if !self.ready.is_empty() {
            // The model went another way: the drafts after `pos` leave the cache.
            if ctx.kv_cache_seq_rm(self.seq, Some(pos as u32), None).is_err() {
                bail!("llama.cpp could not trim its cache");
            }
            self.ready.clear();
        }
        self.history.push(t);
        let drafts = draft_after(self.history, self.max_draft);
        self.batch.clear();
        self.batch.add(t, pos as i32, &[self.seq], true)?;
        for (i, d) in drafts.iter().enumerate() {
            self.batch.add(*d, (pos + 1 + i) as i32, &[self.seq], true)?;
        }
        ctx.decode(&mut self.batch).context("llama.cpp decode")?;
        for (i, d) in drafts.iter().enumerate() {
            self.ready.push_back((*d, logits_at(ctx, i as i32 + 1)?));
        }
        logits_at(ctx, 0)
    }
}

/// The (at most `max`) tokens that followed the latest earlier occurrence of the last
/// [`NGRAM`] tokens of `history`.
fn draft_after<T: Copy + PartialEq>(history: &[T], max: usize) -> Vec<T> {
    let n = history.len();
    if max == 0 || n <= NGRAM {
        return Vec::new();
    }
    let tail = &history[n - NGRAM..];
    let earlier = (0..n - NGRAM).rev().find(|&i| &history[i..i + NGRAM] == tail);
    earlier.map(|i| history[i + NGRAM..].iter().take(max).copied().collect()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::draft_after;

    #[test]
    fn a_draft_is_what_followed_the_last_tokens_where_they_occurred_last() {
        let h = [1, 2, 3, 4, 5, 9, 2, 3, 4, 6, 7, 8, 2, 3, 4];
        assert_eq!(draft_after(&h, 3), vec![6, 7, 8], "the latest occurrence");
        assert_eq!(draft_after(&h, 1), vec![6]);
        assert_eq!(draft_after(&h, 0), Vec::<i32>::new());
        assert_eq!(draft_after(&[1, 2, 3, 4], 4), Vec::<i32>::new(), "no earlier occurrence");
        assert_eq!(draft_after(&[5, 5, 5, 5], 4), vec![5], "overlapping: up to the end");
    }
}
