//! Hugging Face tokenizers as the prompt builder counts and cuts tokens (the candle
//! decoder's and the inference server's tokenizer).

use crate::Error;
use patois_types::Tokens;
use tokenizers::Tokenizer;

/// A Hugging Face tokenizer as the prompt builder counts and cuts tokens.
pub struct HfTokens<'a>(pub &'a Tokenizer);

impl Tokens for HfTokens<'_> {
    fn offsets(&self, text: &str) -> Vec<(usize, usize)> {
        hf_offsets(self.0, text)
    }
}

/// Byte ranges of `text`'s tokens under a Hugging Face tokenizer (characters if it fails).
pub(crate) fn hf_offsets(tok: &Tokenizer, text: &str) -> Vec<(usize, usize)> {
    match tok.encode(text, false) {
        Ok(e) => e.get_offsets().to_vec(),
        Err(_) => patois_types::Chars.offsets(text),
    }
}

/// Token ids of `text` under a Hugging Face tokenizer.
pub(crate) fn hf_encode(tok: &Tokenizer, text: &str) -> Result<Vec<u32>, Error> {
    let enc = tok.encode(text, false);
    Ok(enc.map_err(|e| Error::Generation(format!("tokenizing: {e}")))?.get_ids().to_vec())
}
