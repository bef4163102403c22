//! A PEFT adapter exported as a GGUF LoRA gives llama.cpp the completions candle gives
//! with the same adapter merged, on a tiny model our code writes.

use candle_core::{Device, Tensor};
use patois_adapter::{apply, export_gguf, save_peft, AdapterConfig};
use patois_generate::llama::{LlamaGenerator, LlamaOptions};
use patois_generate::write::{
    random_weights, tiny_config, tokenizer_metadata, train_tokenizer, write_gguf_with, Normal,
};
use patois_generate::{Backend, Config, GenOptions, Generator, Mode};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const CORPUS: &str = "fn main() {\n    let total = add(1, 2);\n    println!(\"{}\", total);\n}\n\npub fn add(a: u32, b: u32) -> u32 {\n    a + b\n}\n";

fn base(dir: &Path) -> (PathBuf, Config) {
    let tok = train_tokenizer(std::iter::repeat_n(CORPUS, 20), 400).unwrap();
    let c = tiny_config(tok.get_vocab_size(true).div_ceil(64) * 64);
    let path = dir.join("base.gguf");
    let meta = tokenizer_metadata(&tok, "gpt-2", c.vocab_size).unwrap();
    let dtype = candle_core::quantized::GgmlDType::F32;
    write_gguf_with(&path, &c, &random_weights(&c, 3).unwrap(), dtype, meta).unwrap();
    (path, c)
}

/// A rank-4 adapter on the q and v projections of `layers`, large enough to change the
/// completion.
fn adapter(dir: &Path, c: &Config, layers: std::ops::Range<usize>) {
    let mut rng = Normal::new(7);
    let (r, h) = (4, c.hidden_size);
    let kv = c.num_key_value_heads * c.head_dim();
    let mut loras: BTreeMap<String, (Tensor, Tensor)> = BTreeMap::new();
    for l in layers {
        for (proj, out) in [("q_proj", h), ("v_proj", kv)] {
            let a = rng.tensor(&[r, h], 0.3).unwrap();
            let b = rng.tensor(&[out, r], 0.3).unwrap();
            loras.insert(format!("model.layers.{l}.self_attn.{proj}"), (a, b));
        }
    }
    let targets = ["q_proj".to_string(), "v_proj".to_string()];
    save_peft(dir, &AdapterConfig::new(r, 8.0, &targets, None), &loras).unwrap();
}

/// Every layer adapted, and only the top one (as `patois train` adapts the top layers);
/// at full, half and zero strength (zero: as if there were no adapter).
#[test]
fn llama_cpp_with_the_exported_adapter_completes_like_candle_with_it_merged() {
    let tmp = tempfile::tempdir().unwrap();
    let (base, shape) = base(tmp.path());
    let n = shape.num_hidden_layers;
    let opts =
        GenOptions { max_tokens: 12, mode: Mode::MultiLine, max_lines: 100, ..Default::default() };
    let prompts = ["fn main() {\n    let total = ", "pub fn add(a: u32, b: u32) -> u32 {\n    "];
    let plain = LlamaGenerator::load(&base, &LlamaOptions::default()).unwrap();
    for (name, layers) in [("all", 0..n), ("top", n - 1..n)] {
        let dir = tmp.path().join(name);
        adapter(&dir, &shape, layers.clone());
        let gguf = dir.join("adapter.gguf");
        assert_eq!(export_gguf(&dir, &base, &gguf).unwrap(), 2 * layers.len());
        let mut by_strength = Vec::new();
        for strength in [1.0, 0.5, 0.0] {
            let mut candle = Generator::load(&base, &Device::Cpu).unwrap();
            assert!(apply(&mut candle.model, &dir, strength, true).unwrap() > 0);
            let lora = LlamaOptions {
                lora: Some(gguf.clone()),
                lora_strength: strength,
                ..Default::default()
            };
            let adapted = LlamaGenerator::load(&base, &lora).unwrap();
            let mut texts = Vec::new();
            for p in prompts {
                let want = candle.complete(p, "", &opts, &|| false).unwrap().text;
                let got = adapted.complete(p, "", &opts, &|| false).unwrap().text;
                assert_eq!(
                    got, want,
                    "{name} layers at strength {strength}: llama.cpp with the adapter vs \
                     candle, after {p:?}"
                );
                texts.push(got);
            }
            by_strength.push(texts);
        }
        let unadapted: Vec<String> =
            prompts.iter().map(|p| plain.complete(p, "", &opts, &|| false).unwrap().text).collect();
        assert_ne!(by_strength[0], unadapted, "{name} layers: the adapter changes the text");
        assert_eq!(by_strength[2], unadapted, "{name} layers: strength 0 undoes the adapter");
    }
}
