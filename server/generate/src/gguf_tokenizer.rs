//! The Hugging Face tokenizer of a GGUF model, built from its `tokenizer.ggml.*` metadata,
//! so a `.gguf` file needs no `tokenizer.json` beside it. Byte-level BPE models only
//! (`tokenizer.ggml.model = "gpt2"`), with the pre-tokenizer that `tokenizer.ggml.pre`
//! names; an unknown one is an error rather than a silently different tokenization.

use candle_core::quantized::gguf_file::{Content, Value};
use std::path::Path;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::BPE;
use tokenizers::normalizers::unicode::NFC;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::{AddedToken, SplitDelimiterBehavior, Tokenizer};

#[derive(Debug, thiserror::Error)]
pub enum GgufTokenizerError {
    #[error("{path}: {detail}")]
    Read { path: String, detail: String },
    #[error(
        "{path}: metadata key {key} is missing or malformed; the file has no usable tokenizer"
    )]
    Key { path: String, key: &'static str },
    #[error(
        "{path}: tokenizer model {model:?} is not supported (byte-level BPE, \"gpt2\", is); \
         put the model's tokenizer.json beside the file"
    )]
    Model { path: String, model: String },
    #[error(
        "{path}: pre-tokenizer {pre:?} is not known to patois (known: qwen2, smollm, gpt-2, \
         llama-bpe, gpt2); put the model's tokenizer.json beside the file"
    )]
    Pre { path: String, pre: String },
    #[error("{path}: building the tokenizer: {detail}")]
    Build { path: String, detail: String },
}

/// GPT-2's split: contractions, letters, digits, other symbols, whitespace.
const GPT2: &str = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";
/// Qwen2: case-insensitive contractions, a letter run with one leading non-letter,
/// single digits, symbol runs with their newlines, newline runs, whitespace.
const QWEN2: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Llama 3: as Qwen2 but digits in groups of up to three.
const LLAMA3: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// GGUF token types (llama.cpp's `llama_token_type`).
const CONTROL: u32 = 3;
const USER_DEFINED: u32 = 4;

fn number(v: &Value) -> Option<u32> {
    match v {
        Value::U8(x) => Some(*x as u32),
        Value::I8(x) => Some(*x as u32),
        Value::U16(x) => Some(*x as u32),
        Value::I16(x) => Some(*x as u32),
        Value::U32(x) => Some(*x),
        Value::I32(x) => Some(*x as u32),
        Value::U64(x) => Some(*x as u32),
        Value::I64(x) => Some(*x as u32),
        _ => None,
    }
}

fn strings(
    content: &Content,
    key: &'static str,
    path: &str,
) -> Result<Vec<String>, GgufTokenizerError> {
    let missing = || GgufTokenizerError::Key { path: path.into(), key };
    let values = content.metadata.get(key).and_then(|v| v.to_vec().ok()).ok_or_else(missing)?;
    values.iter().map(|v| v.to_string().cloned().map_err(|_| missing())).collect()
}

/// Reads the tokenizer of the GGUF file at `path`.
pub fn tokenizer_from_gguf_file(path: &Path) -> Result<Tokenizer, GgufTokenizerError> {
    let name = path.display().to_string();
    let read = |detail: String| GgufTokenizerError::Read { path: name.clone(), detail };
    let mut f = std::fs::File::open(path).map_err(|e| read(e.to_string()))?;
    let content = Content::read(&mut f).map_err(|e| read(format!("not a GGUF file: {e}")))?;
    tokenizer_from_gguf(&content, &name)
}

/// Builds the tokenizer from already read GGUF metadata (`path` is for messages).
pub fn tokenizer_from_gguf(content: &Content, path: &str) -> Result<Tokenizer, GgufTokenizerError> {
    let text = |key: &str| content.metadata.get(key).and_then(|v| v.to_string().ok()).cloned();
    let model = text("tokenizer.ggml.model")
        .ok_or(GgufTokenizerError::Key { path: path.into(), key: "tokenizer.ggml.model" })?;
    if model != "gpt2" {
        return Err(GgufTokenizerError::Model { path: path.into(), model });
    }
    let pre = text("tokenizer.ggml.pre").unwrap_or_else(|| "default".into());
    let build = |e: tokenizers::Error| GgufTokenizerError::Build {
        path: path.into(),
        detail: e.to_string(),
    };
    let split = |regex: &str| -> Result<PreTokenizerWrapper, GgufTokenizerError> {
        let split =
            Split::new(SplitPattern::Regex(regex.into()), SplitDelimiterBehavior::Isolated, false)
                .map_err(build)?;
        Ok(Sequence::new(vec![split.into(), ByteLevel::new(false, false, false).into()]).into())
    };
    let (pre_tokenizer, nfc, ignore_merges): (PreTokenizerWrapper, bool, bool) = match pre.as_str()
    {
        "qwen2" => (split(QWEN2)?, true, false),
        "llama-bpe" | "llama3" => (split(LLAMA3)?, false, true),
        // SmolLM: single digits, then GPT-2's byte-level split.
        "smollm" => (
            Sequence::new(vec![Digits::new(true).into(), ByteLevel::new(false, true, true).into()])
                .into(),
            false,
            false,
        ),
        "gpt2" | "gpt-2" | "default" => (split(GPT2)?, false, false),
        _ => return Err(GgufTokenizerError::Pre { path: path.into(), pre }),
    };

    let tokens = strings(content, "tokenizer.ggml.tokens", path)?;
    let merges = strings(content, "tokenizer.ggml.merges", path)?
        .into_iter()
        .map(|m| match m.split_once(' ') {
            Some((a, b)) => Ok((a.to_string(), b.to_string())),
            None => {
                Err(GgufTokenizerError::Key { path: path.into(), key: "tokenizer.ggml.merges" })
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    let vocab: tokenizers::models::bpe::Vocab =
        tokens.iter().enumerate().map(|(i, t)| (t.clone(), i as u32)).collect();
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .ignore_merges(ignore_merges)
        .build()
        .map_err(build)?;
    let mut tokenizer = Tokenizer::new(bpe);
    tokenizer.with_pre_tokenizer(Some(pre_tokenizer));
    tokenizer.with_decoder(Some(ByteLevelDecoder::new(false, false, false)));
    if nfc {
        tokenizer.with_normalizer(Some(NFC)).map_err(build)?;
    }

    // Control and user-defined tokens are matched whole in the text (FIM markers,
    // `<|endoftext|>`); control tokens are left out when decoding.
    let types: Vec<u32> = content
        .metadata
        .get("tokenizer.ggml.token_type")
        .and_then(|v| v.to_vec().ok())
        .map(|v| v.iter().map(|t| number(t).unwrap_or(1)).collect())
        .unwrap_or_default();
    let of_type = |wanted: u32| -> Vec<AddedToken> {
        let pairs = types.iter().zip(&tokens).filter(|(t, _)| **t == wanted);
        pairs.map(|(_, tok)| AddedToken::from(tok.clone(), wanted == CONTROL)).collect()
    };
    tokenizer.add_special_tokens(of_type(CONTROL)).map_err(build)?;
    tokenizer.add_tokens(of_type(USER_DEFINED)).map_err(build)?;
    Ok(tokenizer)
}
