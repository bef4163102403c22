//! Every loader against tiny models our own code writes.

use candle_core::quantized::GgmlDType;
use candle_core::{Device, Tensor};
use patois_generate::write::{
    make_constant_model_dir, random_weights, tiny_config, train_tokenizer, write_gguf,
    write_safetensors,
};
use patois_generate::{
    Arch, Backend, Config, GenOptions, Generator, KvCache, Mode, Model, StopReason,
};
use patois_types::FimStyle;
use std::cell::Cell;
use std::path::Path;

const CORPUS: &str = "fn main() {\n    let total = add(1, 2);\n    println!(\"{}\", total);\n}\n\npub fn add(a: u32, b: u32) -> u32 {\n    a + b\n}\n";

fn tiny(arch: Arch, vocab: usize) -> Config {
    Config {
        arch,
        norm_eps: 1e-5,
        max_position_embeddings: 512,
        tie_word_embeddings: arch == Arch::Qwen2,
        ..tiny_config(vocab)
    }
}

/// A folder with a tokenizer and the same random weights as safetensors and GGUF f32 + q8_0.
fn make(dir: &Path, arch: Arch) -> Config {
    let tok = train_tokenizer(std::iter::repeat_n(CORPUS, 20), 320).unwrap();
    let c = tiny(arch, 320);
    let w = random_weights(&c, 7).unwrap();
    let st = dir.join("st");
    write_safetensors(&st, &c, &w).unwrap();
    tok.save(st.join("tokenizer.json"), false).unwrap();
    for (name, dt) in [("f32", GgmlDType::F32), ("q8", GgmlDType::Q8_0)] {
        let d = dir.join(name);
        write_gguf(&d.join("model.gguf"), &c, &w, dt).unwrap();
        tok.save(d.join("tokenizer.json"), false).unwrap();
    }
    c
}

fn logits(m: &Model, ids: &[u32]) -> Vec<f32> {
    m.forward_all(ids, &mut KvCache::default()).unwrap().flatten_all().unwrap().to_vec1().unwrap()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn gguf_and_safetensors_give_the_same_logits_for_every_architecture() {
    for arch in [Arch::Llama, Arch::Qwen2, Arch::Starcoder2] {
        let dir = tempfile::tempdir().unwrap();
        let c = make(dir.path(), arch);
        let st = Generator::load(&dir.path().join("st"), &Device::Cpu).unwrap();
        let gg = Generator::load(&dir.path().join("f32/model.gguf"), &Device::Cpu).unwrap();
        assert!((gg.model.config.norm_eps - c.norm_eps).abs() < 1e-9, "eps is stored as f32");
        assert_eq!(
            gg.model.config,
            Config { norm_eps: gg.model.config.norm_eps, ..c.clone() },
            "{arch:?}: GGUF metadata round-trips the config"
        );
        assert_eq!(st.model.config, c);
        let ids = st.encode("fn main() {\n    let total").unwrap();
        let (a, b) = (logits(&st.model, &ids), logits(&gg.model, &ids));
        assert_eq!(a.len(), ids.len() * 320);
        assert!(max_diff(&a, &b) < 1e-4, "{arch:?}: {}", max_diff(&a, &b));
        // Quantized: close, not equal.
        let q8 = Generator::load(&dir.path().join("q8"), &Device::Cpu).unwrap();
        let q = logits(&q8.model, &ids);
        let dot: f32 = a.iter().zip(&q).map(|(x, y)| x * y).sum();
        let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!(dot / (norm(&a) * norm(&q)) > 0.99, "{arch:?}: q8_0 logits drifted");
        assert_eq!(st.info.fim, FimStyle::Qwen, "the built-in tokenizer carries Qwen FIM tokens");
    }
}

#[test]
fn incremental_forward_with_the_kv_cache_equals_one_pass() {
    let dir = tempfile::tempdir().unwrap();
    make(dir.path(), Arch::Qwen2);
    let g = Generator::load(&dir.path().join("st"), &Device::Cpu).unwrap();
    let ids = g.encode(CORPUS).unwrap();
    let full = g.model.forward(&ids, &mut KvCache::default()).unwrap();
    let mut cache = KvCache::default();
    g.model.forward(&ids[..10], &mut cache).unwrap();
    let mut last = Tensor::zeros(1, candle_core::DType::F32, &Device::Cpu).unwrap();
    for &t in &ids[10..] {
        last = g.model.forward(&[t], &mut cache).unwrap();
    }
    let (a, b): (Vec<f32>, Vec<f32>) = (full.to_vec1().unwrap(), last.to_vec1().unwrap());
    assert!(max_diff(&a, &b) < 1e-4);
    // Truncating and re-running reproduces the same logits.
    cache.truncate(12).unwrap();
    let again = g.model.forward(&ids[12..], &mut cache).unwrap().to_vec1::<f32>().unwrap();
    assert!(max_diff(&a, &again) < 1e-4);
}

#[test]
fn prefix_cache_gives_the_same_completion_as_a_cold_run() {
    let dir = tempfile::tempdir().unwrap();
    make(dir.path(), Arch::Llama);
    let g = Generator::load(&dir.path().join("f32"), &Device::Cpu).unwrap();
    let opts =
        GenOptions { max_tokens: 12, mode: Mode::MultiLine, max_lines: 100, ..Default::default() };
    let p1 = FimStyle::Qwen.render("fn main() {\n    let total = ad", "\n}\n");
    let p2 = FimStyle::Qwen.render("fn main() {\n    let total = add", "\n}\n");
    g.complete(&p1, "", &opts, &|| false).unwrap();
    let warm = g.complete(&p2, "", &opts, &|| false).unwrap();
    assert!(warm.cache_hit_tokens > 5, "{warm:?}");
    g.clear_cache();
    let cold = g.complete(&p2, "", &opts, &|| false).unwrap();
    assert_eq!(cold.cache_hit_tokens, 0);
    assert_eq!((warm.text.as_str(), warm.tokens), (cold.text.as_str(), cold.tokens));
    // Seeded sampling is repeatable too.
    let s = GenOptions { temperature: Some(0.8), seed: 3, ..opts.clone() };
    let a = g.complete(&p2, "", &s, &|| false).unwrap();
    g.clear_cache();
    let b = g.complete(&p2, "", &s, &|| false).unwrap();
    assert_eq!(a.text, b.text);
}

#[test]
fn cancellation_stops_between_tokens() {
    let dir = tempfile::tempdir().unwrap();
    make(dir.path(), Arch::Qwen2);
    let g = Generator::load(&dir.path().join("st"), &Device::Cpu).unwrap();
    let polls = Cell::new(0);
    let cancel_after_three = || {
        polls.set(polls.get() + 1);
        polls.get() > 3
    };
    let opts =
        GenOptions { max_tokens: 50, mode: Mode::MultiLine, max_lines: 1000, ..Default::default() };
    let c = g.complete("fn main() {", "", &opts, &cancel_after_three).unwrap();
    assert_eq!(c.stop, StopReason::Cancelled);
    assert_eq!(c.tokens, 3);
}

#[test]
fn clear_errors_for_missing_unsupported_and_mismatched_models() {
    let dir = tempfile::tempdir().unwrap();
    let err = Generator::load(&dir.path().join("nope"), &Device::Cpu).err().unwrap().to_string();
    assert!(err.contains("no model at") && err.contains("--model"), "{err}");

    make(dir.path(), Arch::Qwen2);
    let st = dir.path().join("st");
    let cfg = std::fs::read_to_string(st.join("config.json"))
        .unwrap()
        .replace("\"qwen2\"", "\"mamba\"")
        .replace("Qwen2ForCausalLM", "MambaForCausalLM");
    std::fs::write(st.join("config.json"), cfg).unwrap();
    let err = Generator::load(&st, &Device::Cpu).err().unwrap().to_string();
    assert!(err.contains("`mamba` is not supported"), "{err}");

    let mut big = train_tokenizer(std::iter::repeat_n(CORPUS, 20), 320).unwrap();
    let extra: Vec<_> =
        (0..100).map(|i| tokenizers::AddedToken::from(format!("<extra_{i}>"), true)).collect();
    big.add_special_tokens(extra).unwrap();
    let q8 = dir.path().join("q8");
    big.save(q8.join("tokenizer.json"), false).unwrap();
    let err = Generator::load(&q8, &Device::Cpu).err().unwrap().to_string();
    assert!(err.contains("do not belong together"), "{err}");

    std::fs::remove_file(q8.join("tokenizer.json")).unwrap();
    let err = Generator::load(&q8, &Device::Cpu).err().unwrap().to_string();
    assert!(err.contains("tokenizer.ggml.model") && err.contains("no tokenizer.json"), "{err}");
}

#[test]
fn differentiable_mode_matches_inference_and_reaches_every_projection() {
    let dir = tempfile::tempdir().unwrap();
    make(dir.path(), Arch::Llama);
    let mut g = Generator::load(&dir.path().join("st"), &Device::Cpu).unwrap();
    let ids: Vec<u32> = (3..20).collect();
    let fast = logits(&g.model, &ids);
    g.model.differentiable = true;
    let slow = logits(&g.model, &ids);
    assert!(max_diff(&fast, &slow) < 1e-4, "{}", max_diff(&fast, &slow));
    // A LoRA on q_proj gets a gradient only if rope/norm/softmax pass gradients back.
    let a = candle_core::Var::from_tensor(
        &Tensor::ones((2, 64), candle_core::DType::F32, &Device::Cpu).unwrap(),
    )
    .unwrap();
    let b = candle_core::Var::from_tensor(
        &Tensor::ones((64, 2), candle_core::DType::F32, &Device::Cpu).unwrap(),
    )
    .unwrap();
    let lora =
        patois_generate::Lora { a: a.as_tensor().clone(), b: b.as_tensor().clone(), scale: 1.0 };
    g.model
        .set_lora(&[("model.layers.0.self_attn.q_proj".to_string(), lora)].into_iter().collect())
        .unwrap();
    let loss = g.model.forward_all(&ids, &mut KvCache::default()).unwrap().sum_all().unwrap();
    let grads = loss.backward().unwrap();
    assert!(grads.get(a.as_tensor()).is_some() && grads.get(b.as_tensor()).is_some());
}

#[test]
fn a_constant_model_says_its_word_after_any_prompt() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = std::iter::repeat_n(CORPUS, 8);
    let word = make_constant_model_dir(dir.path(), corpus, &tiny_config(300), "total").unwrap();
    assert!("total".starts_with(word.trim()) && !word.trim().is_empty(), "{word:?}");
    let g = Generator::load(dir.path(), &Device::Cpu).unwrap();
    let opts = GenOptions { max_tokens: 3, mode: Mode::SingleLine, ..Default::default() };
    for prompt in ["fn main() {", "x", &FimStyle::Qwen.render("let a = ", "\n")] {
        let c = g.complete(prompt, "", &opts, &|| false).unwrap();
        assert_eq!(c.text, word.repeat(3), "after {prompt:?}");
    }
}

#[test]
fn a_model_stuck_in_a_loop_is_cut_to_its_first_writing() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = std::iter::repeat_n(CORPUS, 8);
    let word = make_constant_model_dir(dir.path(), corpus, &tiny_config(300), "total").unwrap();
    assert!(word.trim().len() >= 2, "a token of two letters or more: {word:?}");
    let g = Generator::load(dir.path(), &Device::Cpu).unwrap();
    let opts = GenOptions { max_tokens: 12, mode: Mode::SingleLine, ..Default::default() };
    let c = g.complete("fn main() {", "", &opts, &|| false).unwrap();
    assert_eq!((c.text.as_str(), c.stop), (word.as_str(), StopReason::Looping));
    assert_eq!(c.tokens, 4, "stopped at the fourth writing");
}
