//! Token healing. A prompt that ends inside a word the user is typing ends in a token
//! the model rarely saw there ("is_abs" + "olute" is not how "is_absolute" was ever
//! tokenized), so it continues the fragment badly. The prompt's last token is taken off
//! when it holds part of a word, and the first tokens written must spell it again: the
//! model then chooses how the word goes on among whole tokens it knows. What was taken
//! off is not part of the answer. Typing on inside the word leaves the shortened prompt
//! as it was, so its cache serves every key of the word.

use candle_core::{Device, Tensor};

/// The text taken off the end of a prompt, which the answer must begin with.
pub(crate) struct Heal<'a> {
    /// The bytes still to spell.
    left: Vec<u8>,
    /// How many bytes the taken-off text has (the answer's written text starts after them).
    pub len: usize,
    /// Every token's bytes, by id.
    pieces: &'a [Vec<u8>],
}

/// Whether a prompt's last token `piece` is part of a word being typed: it ends in a
/// letter, digit or underscore and holds no line break.
pub(crate) fn healable(piece: &str) -> bool {
    !piece.contains('\n') && piece.chars().last().is_some_and(|c| c.is_alphanumeric() || c == '_')
}

impl<'a> Heal<'a> {
    pub fn new(text: &str, pieces: &'a [Vec<u8>]) -> Heal<'a> {
        Heal { left: text.as_bytes().to_vec(), len: text.len(), pieces }
    }

    /// Whether the taken-off text is spelled out by the tokens written so far.
    pub fn done(&self) -> bool {
        self.left.is_empty()
    }

    /// Whether token `id` can come next: it goes on with the text still to spell, or is
    /// the beginning of it.
    fn allows(&self, id: usize) -> bool {
        let piece = self.pieces.get(id).map_or(&[][..], Vec::as_slice);
        !piece.is_empty() && (piece.starts_with(&self.left) || self.left.starts_with(piece))
    }

    /// `logits` with every token that cannot come next made impossible; `None` when no
    /// token can.
    pub fn restrict(&self, logits: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let mut values = logits.to_vec1::<f32>()?;
        let mut any = false;
        for (id, v) in values.iter_mut().enumerate() {
            if self.allows(id) {
                any = true;
            } else {
                *v = f32::NEG_INFINITY;
            }
        }
        let n = values.len();
        any.then(|| Tensor::from_vec(values, n, &Device::Cpu)).transpose()
    }

    /// Takes in the token written next.
    pub fn wrote(&mut self, id: u32) {
        let piece = self.pieces.get(id as usize).map_or(0, Vec::len);
        self.left.drain(..piece.min(self.left.len()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces() -> Vec<Vec<u8>> {
        ["", "_abs", "olute", "_absolute", "_a", "bs", "x", "_ab"]
            .iter()
            .map(|p| p.as_bytes().to_vec())
            .collect()
    }

    #[test]
    fn only_tokens_that_spell_the_taken_off_text_or_go_on_from_it_may_come_next() {
        let pieces = pieces();
        let heal = Heal::new("_abs", &pieces);
        let logits = Tensor::new(&[9f32, 1., 5., 2., 3., 4., 8., 0.], &Device::Cpu).unwrap();
        let restricted = heal.restrict(&logits).unwrap().unwrap().to_vec1::<f32>().unwrap();
        let allowed: Vec<usize> = (0..8).filter(|&i| restricted[i].is_finite()).collect();
        // "_abs" itself, "_absolute" (goes on), "_a" and "_ab" (begin it); not the empty
        // control token, "olute", "bs" or "x", whatever their logits.
        assert_eq!(allowed, [1, 3, 4, 7]);
        assert_eq!(restricted[3], 2.0);
    }

    #[test]
    fn spelling_the_text_in_parts_finishes_the_healing() {
        let pieces = pieces();
        let mut heal = Heal::new("_abs", &pieces);
        heal.wrote(4);
        assert!(!heal.done());
        let logits = Tensor::new(&[0f32; 8], &Device::Cpu).unwrap();
        let restricted = heal.restrict(&logits).unwrap().unwrap().to_vec1::<f32>().unwrap();
        assert!(restricted[5].is_finite() && restricted[1].is_infinite(), "{restricted:?}");
        heal.wrote(5);
        assert!(heal.done());
        assert_eq!(heal.len, 4);
        let nothing = Heal::new("zz", &pieces);
        assert!(nothing.restrict(&logits).unwrap().is_none());
    }

    #[test]
    fn the_end_of_a_word_is_healed_not_punctuation_or_line_breaks() {
        assert!(healable("_abs"));
        assert!(healable(" total"));
        assert!(healable("x1"));
        assert!(healable("é"));
        assert!(!healable("("));
        assert!(!healable(" "));
        assert!(!healable("\n    "));
        assert!(!healable("a\n"));
        assert!(!healable(""));
    }
}
