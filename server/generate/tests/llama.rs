//! The GGUF tokenizer and the llama.cpp backend, on tiny models our own code writes
//! (random weights, a tokenizer trained here, its metadata embedded in the GGUF file).

use candle_core::quantized::gguf_file::Value;
use candle_core::quantized::GgmlDType;
use patois_generate::write::{
    make_constant_gguf, random_weights, tiny_config, tokenizer_metadata, train_tokenizer,
    write_gguf_with,
};
use patois_generate::{
    load_backend, tokenizer_from_gguf_file, Backend, BackendKind, ChatMessage, GenOptions,
    Generator, LlamaGenerator, LlamaOptions, Mode, Role, StopReason,
};
use patois_types::{FimStyle, Tokens};
use std::path::{Path, PathBuf};

const CORPUS: &str = "fn main() {\n    let total = add(1, 2);\n    println!(\"{}\", total);\n}\n\n\
pub fn add(a: u32, b: u32) -> u32 {\n    a + b\n}\n\nimpl Iterator for Foo<'a> {\n    type Item = u8;\n}\n";

const SAMPLES: &[&str] = &[
    "fn main() {\n    let x = 12345;\n}",
    "    impl<'a> Iterator for Foo<'a> {",
    "pub fn add(a: u32, b: u32) -> u32 { a + b }",
    "let s = \"héllo wörld — ünïcode\";\n\n\n    // comment\t tab",
    "<|fim_prefix|>a<|fim_suffix|>b<|fim_middle|>",
];

/// A tiny Qwen2-layout model in a GGUF file that carries its tokenizer.
fn tiny_gguf(dir: &Path, dtype: GgmlDType) -> PathBuf {
    tiny_gguf_with(dir, dtype, Vec::new())
}

/// [`tiny_gguf`] with more metadata.
fn tiny_gguf_with(dir: &Path, dtype: GgmlDType, more: Vec<(String, Value)>) -> PathBuf {
    let tok = train_tokenizer(std::iter::repeat_n(CORPUS, 20), 400).unwrap();
    let c = tiny_config(tok.get_vocab_size(true).div_ceil(64) * 64);
    let path = dir.join("tiny.gguf");
    let mut meta = tokenizer_metadata(&tok, "gpt-2", c.vocab_size).unwrap();
    meta.extend(more);
    write_gguf_with(&path, &c, &random_weights(&c, 3).unwrap(), dtype, meta).unwrap();
    tok.save(dir.join("trained-tokenizer.json"), false).unwrap();
    path
}

#[test]
fn the_tokenizer_built_from_gguf_metadata_matches_the_original() {
    let dir = tempfile::tempdir().unwrap();
    let path = tiny_gguf(dir.path(), GgmlDType::F32);
    let original =
        tokenizers::Tokenizer::from_file(dir.path().join("trained-tokenizer.json")).unwrap();
    let rebuilt = tokenizer_from_gguf_file(&path).unwrap();
    for s in SAMPLES {
        let a = original.encode(*s, false).unwrap();
        let b = rebuilt.encode(*s, false).unwrap();
        assert_eq!(a.get_ids(), b.get_ids(), "{s:?}");
        assert_eq!(rebuilt.decode(b.get_ids(), false).unwrap(), *s);
    }
    // The FIM markers are single tokens.
    let ids = rebuilt.encode(SAMPLES[4], false).unwrap().get_ids().to_vec();
    assert_eq!(ids.len(), 5, "{ids:?}");
    assert_eq!(ids[0], rebuilt.token_to_id("<|fim_prefix|>").unwrap());
}

#[test]
fn llama_cpp_tokenizes_like_the_gguf_tokenizer() {
    let dir = tempfile::tempdir().unwrap();
    let path = tiny_gguf(dir.path(), GgmlDType::F32);
    let ours = tokenizer_from_gguf_file(&path).unwrap();
    let llama = LlamaGenerator::load(&path, &LlamaOptions::default()).unwrap();
    for s in SAMPLES {
        let a = ours.encode(*s, false).unwrap().get_ids().to_vec();
        assert_eq!(llama.encode(s).unwrap(), a, "{s:?}");
        // Offsets cover the text in order and never split a character.
        let off = llama.offsets(s);
        assert_eq!(off.len(), a.len());
        assert_eq!(off.last().unwrap().1, s.len());
        assert!(off.iter().all(|(x, y)| s.is_char_boundary(*x) && s.is_char_boundary(*y)));
    }
}

#[test]
fn a_pre_tokenizer_patois_does_not_know_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let tok = train_tokenizer(std::iter::repeat_n(CORPUS, 5), 300).unwrap();
    let c = tiny_config(320);
    let path = dir.path().join("odd.gguf");
    let meta = tokenizer_metadata(&tok, "mystery-bpe", c.vocab_size).unwrap();
    write_gguf_with(&path, &c, &random_weights(&c, 1).unwrap(), GgmlDType::F32, meta).unwrap();
    let err = tokenizer_from_gguf_file(&path).unwrap_err().to_string();
    assert!(err.contains("mystery-bpe") && err.contains("odd.gguf"), "{err}");
}

#[test]
fn llama_cpp_and_candle_complete_the_same_on_the_same_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = tiny_gguf(dir.path(), GgmlDType::F32);
    let llama = load_backend(&path, BackendKind::Llama).unwrap();
    let candle = load_backend(&path, BackendKind::Candle).unwrap();
    assert_eq!(llama.info().backend, patois_generate::RunBy::LlamaCpp);
    assert_eq!(candle.info().backend, patois_generate::RunBy::Candle);
    assert_eq!(llama.info().fim, FimStyle::Qwen);
    let opts =
        GenOptions { max_tokens: 12, mode: Mode::MultiLine, max_lines: 100, ..Default::default() };
    let prompt = FimStyle::Qwen.render("fn main() {\n    let total = add(", "\n}\n");
    let a = llama.complete(&prompt, "\n}\n", &opts, &|| false).unwrap();
    let b = candle.complete(&prompt, "\n}\n", &opts, &|| false).unwrap();
    assert_eq!(a.prompt_tokens, b.prompt_tokens);
    assert_eq!(a.tokens, b.tokens);
    assert_eq!(a.text, b.text, "greedy decoding agrees token for token");
}

/// Drafts from the text so far change how many decodes run, not what is written: the
/// same text token for token as decoding one token at a time, and as candle, whether the
/// drafts are taken (a prompt that repeats itself) or turned down (a tiny model in F32,
/// where batched sums do not tip a pick).
#[test]
fn drafting_from_the_prompt_writes_what_one_token_at_a_time_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = tiny_gguf(dir.path(), GgmlDType::F32);
    let load = |draft| LlamaGenerator::load(&path, &LlamaOptions { draft, ..Default::default() });
    let (plain, drafting) = (load(0).unwrap(), load(4).unwrap());
    let candle = load_backend(&path, BackendKind::Candle).unwrap();
    let opts =
        GenOptions { max_tokens: 40, mode: Mode::MultiLine, max_lines: 100, ..Default::default() };
    let prompts = [
        CORPUS.repeat(3),
        FimStyle::Qwen.render("fn main() {\n    let total = add(", "\n}\n"),
        format!("{}pub fn add(a: u32, b: u32) -> u32 {{\n", CORPUS.repeat(2)),
    ];
    for prompt in &prompts {
        let a = plain.complete(prompt, "", &opts, &|| false).unwrap();
        let b = drafting.complete(prompt, "", &opts, &|| false).unwrap();
        let c = candle.complete(prompt, "", &opts, &|| false).unwrap();
        assert!(a.tokens > 5, "{a:?}");
        assert_eq!((a.tokens, &a.text), (b.tokens, &b.text), "{prompt:?}");
        assert_eq!(b.text, c.text, "{prompt:?}");
    }
    // After drafts were turned down, the cache holds what was written and nothing more: a
    // prompt extending the last one reuses it and writes what a cold run writes.
    let last = &prompts[2];
    let written = drafting.complete(last, "", &opts, &|| false).unwrap();
    let longer = format!("{last}{}", written.text);
    let warm = drafting.complete(&longer, "", &opts, &|| false).unwrap();
    plain.clear_cache();
    let cold = plain.complete(&longer, "", &opts, &|| false).unwrap();
    assert_eq!(warm.text, cold.text);
    assert!(warm.cache_hit_tokens > 0, "{warm:?}");
}

#[test]
fn the_kv_cache_of_the_common_prefix_is_reused_and_cancellation_stops() {
    let dir = tempfile::tempdir().unwrap();
    let path = tiny_gguf(dir.path(), GgmlDType::Q8_0);
    let g = LlamaGenerator::load(&path, &LlamaOptions { batch: 8, ..Default::default() }).unwrap();
    let opts = GenOptions { max_tokens: 6, mode: Mode::MultiLine, ..Default::default() };
    let p1 = FimStyle::Qwen.render(&CORPUS.repeat(2), "");
    let first = g.complete(&p1, "", &opts, &|| false).unwrap();
    assert_eq!(first.cache_hit_tokens, 0);
    let p2 = FimStyle::Qwen.render(&format!("{}x", CORPUS.repeat(2)), "");
    let second = g.complete(&p2, "", &opts, &|| false).unwrap();
    assert!(second.cache_hit_tokens > first.prompt_tokens * 9 / 10, "{second:?}");
    // The same prompt again from a cold cache gives the same text.
    g.clear_cache();
    let cold = g.complete(&p2, "", &opts, &|| false).unwrap();
    assert_eq!(cold.cache_hit_tokens, 0);
    assert_eq!(cold.text, second.text);
    // Cancelled before decoding: nothing is generated.
    let p3 = FimStyle::Qwen.render(&CORPUS.repeat(3), "");
    let c = g.complete(&p3, "", &opts, &|| true).unwrap();
    assert_eq!(c.stop, StopReason::Cancelled);
    assert_eq!(c.tokens, 0);
    // Cancelled before its first batch: nothing of p3 was evaluated, and what the cache
    // shared with it (p2's start) is still there for the next request.
    let (t2, t3) = (g.encode(&p2).unwrap(), g.encode(&p3).unwrap());
    let shared = t2.iter().zip(&t3).take_while(|(a, b)| a == b).count();
    assert!(shared > 100, "{shared}");
    let again = g.complete(&p3, "", &opts, &|| false).unwrap();
    assert_eq!(again.cache_hit_tokens, shared, "{again:?}");
}

#[test]
fn a_prompt_longer_than_the_context_is_an_error_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let path = tiny_gguf(dir.path(), GgmlDType::F32);
    let g =
        LlamaGenerator::load(&path, &LlamaOptions { context: 64, ..Default::default() }).unwrap();
    let err = g.complete(&CORPUS.repeat(10), "", &GenOptions::default(), &|| false).unwrap_err();
    assert!(err.to_string().contains("context"), "{err}");
    // The model still works afterwards.
    assert!(g.complete("fn main", "", &GenOptions::default(), &|| false).is_ok());
}

#[test]
fn a_gguf_without_tokenizer_json_loads_in_candle_too() {
    let dir = tempfile::tempdir().unwrap();
    let path = tiny_gguf(dir.path(), GgmlDType::Q8_0);
    let g = Generator::load(&path, &candle_core::Device::Cpu).unwrap();
    assert_eq!(g.info.fim, FimStyle::Qwen);
    assert_eq!(g.encode("fn main").unwrap().len(), g.count("fn main"));
}

/// Cancellation reaches inside a decode call: llama.cpp asks the request's check between
/// the operations of a batch, so a batch stops half done, and nothing of it stays cached.
#[test]
fn cancellation_stops_llama_cpp_inside_a_prefill_batch() {
    let dir = tempfile::tempdir().unwrap();
    let path = tiny_gguf(dir.path(), GgmlDType::F32);
    let g =
        LlamaGenerator::load(&path, &LlamaOptions { batch: 512, ..Default::default() }).unwrap();
    let prompt = CORPUS.repeat(3);
    let n = g.count(&prompt);
    assert!(n > 100 && n < 512, "one batch of {n} tokens");
    let checks = std::cell::Cell::new(0);
    // Not cancelled at the check before the batch; cancelled at the hook's third look.
    let cancelled = || {
        checks.set(checks.get() + 1);
        checks.get() > 3
    };
    let opts = GenOptions { max_tokens: 4, ..Default::default() };
    let c = g.complete(&prompt, "", &opts, &cancelled).unwrap();
    assert_eq!(c.stop, StopReason::Cancelled);
    assert_eq!(g.uncached_tokens(&prompt, false), n, "the batch stopped before its end");
    // The next request computes the same as a fresh model does.
    let never = || false;
    let again = g.complete(&prompt, "", &opts, &never).unwrap();
    assert_eq!(g.uncached_tokens(&prompt, false), 0, "now it is cached");
    assert_eq!(g.uncached_tokens(&prompt, true), n, "in the full prompts' slot only");
    let fresh = LlamaGenerator::load(&path, &LlamaOptions::default()).unwrap();
    assert_eq!(again.text, fresh.complete(&prompt, "", &opts, &never).unwrap().text);
}

/// A background prefill runs in small batches (64 tokens here): stopped part way, it keeps
/// the batches it finished, where a request's prefill (one batch here) keeps nothing.
#[test]
fn a_stopped_background_prefill_keeps_its_finished_batches() {
    let dir = tempfile::tempdir().unwrap();
    let path = tiny_gguf(dir.path(), GgmlDType::F32);
    let g = LlamaGenerator::load(&path, &LlamaOptions::default()).unwrap();
    let prompt = CORPUS.repeat(3);
    let n = g.count(&prompt);
    assert!(n > 128 && n < 256, "one request batch, several background ones: {n} tokens");
    // Stopped at the `looks`-th look of the cancellation check.
    let stop_at = |looks: usize, background: bool| {
        g.clear_cache();
        let checks = std::cell::Cell::new(0);
        let cancelled = || {
            checks.set(checks.get() + 1);
            checks.get() > looks
        };
        let batch = background.then_some(64);
        let opts = GenOptions { max_tokens: 0, batch, ..Default::default() };
        let stopped = g.complete(&prompt, "", &opts, &cancelled).unwrap().stop;
        (stopped == StopReason::Cancelled).then(|| n - g.uncached_tokens(&prompt, false))
    };
    let stops = || (1..14).map(|k| 1usize << k);
    let kept: Vec<usize> = stops().filter_map(|looks| stop_at(looks, true)).collect();
    assert!(kept.iter().any(|k| *k > 0), "stopped part way, some is kept: {kept:?}");
    assert!(kept.iter().all(|k| k % 64 == 0 && *k < n), "whole batches of 64: {kept:?} of {n}");
    let request: Vec<usize> = stops().filter_map(|looks| stop_at(looks, false)).collect();
    assert!(!request.is_empty() && request.iter().all(|k| *k == 0), "{request:?}");
}

/// Prose prompts (explanations, answers) use the chat template the GGUF carries, as
/// llama.cpp applies it; a file without one gets the format its vocabulary shows (plain
/// text for this tokenizer, which has no chat markers).
#[test]
fn the_chat_template_in_the_gguf_is_applied() {
    let messages = [
        ChatMessage::new(Role::System, "Cite sources."),
        ChatMessage::new(Role::User, "What is add?"),
    ];
    let dir = tempfile::tempdir().unwrap();
    let plain =
        LlamaGenerator::load(&tiny_gguf(dir.path(), GgmlDType::F32), &LlamaOptions::default());
    let prompt = plain.unwrap().chat_prompt(&messages);
    assert_eq!(prompt, "Cite sources.\n\nWhat is add?\n\nAnswer:");
    let gemma = "{% for m in messages %}{{ '<start_of_turn>' + m['role'] + '\\n' + m['content'] + \
                 '<end_of_turn>\\n' }}{% endfor %}<start_of_turn>model\\n";
    let more = vec![("tokenizer.chat_template".to_string(), Value::String(gemma.into()))];
    let dir = tempfile::tempdir().unwrap();
    let path = tiny_gguf_with(dir.path(), GgmlDType::F32, more);
    let g = LlamaGenerator::load(&path, &LlamaOptions::default()).unwrap();
    let prompt = g.chat_prompt(&messages);
    assert!(prompt.starts_with("<start_of_turn>user\n"), "{prompt:?}");
    assert!(prompt.contains("Cite sources.") && prompt.contains("What is add?"), "{prompt:?}");
    assert!(prompt.ends_with("<start_of_turn>model\n"), "{prompt:?}");
}

/// A prompt that ends inside a word is healed: its last token is taken off and the
/// answer goes on from whole tokens that spell it again. A model that always says
/// " address", asked after "add": without healing it writes " address" after "add";
/// healed, it chooses " address" in place of " add" and the answer goes on with "ress".
#[test]
fn a_prompt_that_ends_inside_a_word_is_healed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("address.gguf");
    let text = "fn send(to: u32) -> u32 {\n    let address = to + 1;\n    let next = add(to, 1);\n    next + address\n}\n";
    let shape = tiny_config(400);
    let word =
        make_constant_gguf(&path, std::iter::repeat_n(text, 30), &shape, " address").unwrap();
    assert_eq!(word, " address");
    let g = LlamaGenerator::load(&path, &LlamaOptions::default()).unwrap();
    let prompt = "fn main() {\n    let next = add";
    let ids = g.encode(prompt).unwrap();
    assert_eq!(g.encode(" add").unwrap(), ids[ids.len() - 1..], "the prompt ends in \" add\"");
    let opts = GenOptions { max_tokens: 3, mode: Mode::MultiLine, ..Default::default() };
    let healed = g.complete(prompt, "", &opts, &|| false).unwrap();
    assert_eq!(healed.text, "ress address address address");
    assert_eq!(healed.prompt_tokens, ids.len() - 1);
    let plain = GenOptions { heal: false, ..opts.clone() };
    let unhealed = g.complete(prompt, "", &plain, &|| false).unwrap();
    assert_eq!(unhealed.text, " address address address");
    // A prompt that ends after punctuation is not healed.
    let after = g.complete("fn main() {\n    let next = add(", "", &opts, &|| false).unwrap();
    assert_eq!(after.text, " address address address");
}
