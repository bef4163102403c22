//! The tantivy schema and the code-aware tokenizer.

use tantivy::schema::{
    Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, FAST, INDEXED, STORED, STRING,
};
use tantivy::tokenizer::{Token, TokenStream, Tokenizer};

/// Name under which [`CodeTokenizer`] is registered.
pub const CODE_TOKENIZER: &str = "code";

/// Every field of the one schema. A document's `kind` says which fields it uses:
/// `chunk` and `symbol` documents belong to a file (`file`), `commit` and `pr`
/// documents list the files they touched (`touched`) and carry a unique `key`.
#[derive(Clone, Copy, Debug)]
pub struct Fields {
    pub kind: Field,
    pub file: Field,
    pub key: Field,
    pub touched: Field,
    pub lang: Field,
    pub name: Field,
    pub name_exact: Field,
    pub sym_kind: Field,
    pub scope: Field,
    pub start_line: Field,
    pub end_line: Field,
    pub text: Field,
    pub signature: Field,
    pub doc: Field,
    pub commit: Field,
    pub author: Field,
    pub time: Field,
    pub pr: Field,
    pub title: Field,
    pub stats: Field,
}

pub fn build() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let code = TextOptions::default()
        .set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(CODE_TOKENIZER)
                .set_index_option(IndexRecordOption::WithFreqs),
        )
        .set_stored();
    let fields = Fields {
        kind: b.add_text_field("kind", STRING | STORED),
        file: b.add_text_field("file", STRING | STORED),
        key: b.add_text_field("key", STRING),
        touched: b.add_text_field("touched", STRING | STORED),
        lang: b.add_text_field("lang", STRING | STORED),
        name: b.add_text_field("name", code.clone()),
        name_exact: b.add_text_field("name_exact", STRING),
        sym_kind: b.add_text_field("sym_kind", STRING | STORED),
        scope: b.add_text_field("scope", STRING | STORED),
        start_line: b.add_u64_field("start_line", STORED),
        end_line: b.add_u64_field("end_line", STORED),
        text: b.add_text_field("text", code.clone()),
        signature: b.add_text_field("signature", STORED),
        doc: b.add_text_field("doc", STORED),
        commit: b.add_text_field("commit", STRING | STORED),
        author: b.add_text_field("author", STRING | STORED),
        time: b.add_i64_field("time", INDEXED | STORED | FAST),
        pr: b.add_u64_field("pr", INDEXED | STORED),
        title: b.add_text_field("title", code),
        stats: b.add_text_field("stats", STORED),
    };
    (b.build(), fields)
}

/// Splits code into identifiers and their parts: `parseHttpURL2` gives
/// `parsehttpurl2`, `parse`, `http`, `url2`; `max_file_size` gives
/// `max_file_size`, `max`, `file`, `size`. Paths split at `/` and `.`.
/// Everything is lower-cased; single characters are dropped.
#[derive(Clone, Default)]
pub struct CodeTokenizer;

pub struct CodeTokenStream {
    tokens: Vec<Token>,
    next: usize,
}

impl Tokenizer for CodeTokenizer {
    type TokenStream<'a> = CodeTokenStream;
    fn token_stream<'a>(&'a mut self, text: &'a str) -> CodeTokenStream {
        let mut tokens = Vec::new();
        for_each_token(text, |from, to, word| {
            tokens.push(Token {
                offset_from: from,
                offset_to: to,
                position: tokens.len(),
                text: word,
                position_length: 1,
            });
        });
        CodeTokenStream { tokens, next: 0 }
    }
}

impl TokenStream for CodeTokenStream {
    fn advance(&mut self) -> bool {
        self.next += 1;
        self.next <= self.tokens.len()
    }
    fn token(&self) -> &Token {
        &self.tokens[self.next - 1]
    }
    fn token_mut(&mut self) -> &mut Token {
        &mut self.tokens[self.next - 1]
    }
}

const MAX_TOKEN: usize = 64;

/// Calls `f(from, to, lowercased)` for each identifier of `text` and each of its parts.
pub fn for_each_token(text: &str, mut f: impl FnMut(usize, usize, String)) {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if !is_ident(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && is_ident(bytes[i]) {
            i += 1;
        }
        let word = &text[start..i];
        if word.len() < 2 || word.len() > MAX_TOKEN {
            continue;
        }
        f(start, i, word.to_ascii_lowercase());
        let parts = split_parts(word);
        if parts.len() > 1 {
            for (s, e) in parts {
                if e - s >= 2 {
                    f(start + s, start + e, word[s..e].to_ascii_lowercase());
                }
            }
        }
    }
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Byte ranges of the snake_case and camelCase parts of an identifier.
fn split_parts(word: &str) -> Vec<(usize, usize)> {
    let b = word.as_bytes();
    let mut parts = Vec::new();
    let mut start = None;
    for i in 0..b.len() {
        if b[i] == b'_' {
            if let Some(s) = start.take() {
                parts.push((s, i));
            }
            continue;
        }
        let boundary = match start {
            None => false,
            Some(_) => {
                let prev = b[i - 1];
                (prev.is_ascii_lowercase() || prev.is_ascii_digit()) && b[i].is_ascii_uppercase()
                    || (prev.is_ascii_uppercase()
                        && b[i].is_ascii_uppercase()
                        && b.get(i + 1).is_some_and(|n| n.is_ascii_lowercase()))
            }
        };
        if boundary {
            parts.push((start.unwrap(), i));
            start = Some(i);
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(s) = start {
        parts.push((s, b.len()));
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<String> {
        let mut v = Vec::new();
        for_each_token(s, |_, _, t| v.push(t));
        v
    }

    #[test]
    fn splits_camel_snake_and_paths() {
        assert_eq!(toks("parseHTTPRequest2"), ["parsehttprequest2", "parse", "http", "request2"]);
        assert_eq!(toks("max_file_size"), ["max_file_size", "max", "file", "size"]);
        assert_eq!(toks("src/index_dir.rs x"), ["src", "index_dir", "index", "dir", "rs"]);
        assert_eq!(toks("Self::new()"), ["self", "new"]);
    }
}
