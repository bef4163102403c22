//! `patois bench generate`: first-token latency and decode speed, cold and with
//! the prefix cache after a one-character edit, for the built-in model and for a
//! random model of Qwen2.5-Coder-0.5B's shape in Q4_0 made by our own code.

use crate::model_cmds::{open_engine, ModelArgs};
use crate::IndexLocation;
use anyhow::Result;
use candle_core::quantized::GgmlDType;
use candle_core::Device;
use patois_engine::{builtin_model_dir, Ticket};
use patois_generate::write::{random_weights, train_tokenizer, write_gguf};
use patois_generate::{Arch, Config, GenOptions, Generator, Mode};
use patois_prompt::FimStyle;
use std::path::Path;

fn pct(v: &mut [f64], q: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * q).round() as usize]
}

/// Real code from the repository, as much as `tokens` tokens.
fn code_prompt(g: &Generator, root: &Path, files: &[String], tokens: usize) -> String {
    let mut text = String::new();
    for f in files {
        if let Ok(t) = std::fs::read_to_string(root.join(f)) {
            text.push_str(&t);
        }
        if g.encode(&text).map(|v| v.len()).unwrap_or(0) > tokens {
            break;
        }
    }
    let ids = g.encode(&text).unwrap_or_default();
    g.decode(&ids[..ids.len().min(tokens)]).unwrap_or_default()
}

/// Cold first token, decode speed, and first token after typing one character.
fn latency(label: &str, g: &Generator, prefix: &str, suffix: &str) -> Result<()> {
    let opts = GenOptions {
        max_tokens: 24,
        mode: Mode::MultiLine,
        max_lines: 10_000,
        ..Default::default()
    };
    let render = |p: &str| g.info.fim.render(p, suffix);
    let mut cold = Vec::new();
    let mut warm = Vec::new();
    let mut decode = Vec::new();
    let mut hit = 0;
    let mut prompt_tokens = 0;
    for i in 0..3 {
        g.clear_cache();
        let p0 = format!("{prefix}{}", "x".repeat(i));
        let c = g.complete(&render(&p0), suffix, &opts, &|| false)?;
        cold.push(c.first_token_ms);
        prompt_tokens = c.prompt_tokens;
        if c.tokens > 1 {
            decode.push((c.tokens - 1) as f64 / (c.decode_ms / 1e3));
        }
        let w = g.complete(&render(&format!("{p0}y")), suffix, &opts, &|| false)?;
        warm.push(w.first_token_ms);
        hit = w.cache_hit_tokens;
    }
    let (c, w) = (pct(&mut cold, 0.5), pct(&mut warm, 0.5));
    println!("  {label}");
    println!(
        "    prompt             {prompt_tokens} tokens ({} FIM)",
        format!("{:?}", g.info.fim).to_lowercase()
    );
    println!(
        "    first token cold   {c:.0} ms (prefill {:.0} tokens/s)",
        prompt_tokens as f64 / (c / 1e3)
    );
    println!("    first token warm   {w:.0} ms after a one-character edit ({hit} tokens reused): {:.1}x faster", c / w);
    if !decode.is_empty() {
        println!("    decode             {:.0} tokens/s", pct(&mut decode, 0.5));
    }
    Ok(())
}

pub fn run(dir: &Path, skip_large: bool) -> Result<()> {
    let engine =
        open_engine(dir, &ModelArgs { model: None, location: IndexLocation { index_dir: None } })?;
    let files: Vec<String> = engine.index().with_manifest(|m| {
        m.files.iter().filter(|(_, e)| e.language.is_some()).map(|(p, _)| p.clone()).collect()
    });
    let builtin = builtin_model_dir(engine.index().dir());
    println!(
        "bench generate ({} cores)",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );
    let g = match engine.load_model() {
        Ok(g) => g,
        Err(e) => anyhow::bail!("{e:#}\nthe benchmark runs the built-in model; train it first with `patois train` (it is written to {})", builtin.display()),
    };
    println!(
        "  built-in model: {} ({:.1}M parameters, context {})",
        g.info.path.display(),
        g.info.parameters as f64 / 1e6,
        g.info.context
    );

    // End to end through the engine: typing one character per request in real files.
    let mut e2e = Vec::new();
    let mut uncached = Vec::new();
    for (i, f) in files.iter().enumerate().take(40) {
        let Ok(text) = std::fs::read_to_string(engine.root().join(f)) else { continue };
        let Some(pos) = text.char_indices().map(|(p, _)| p).nth(text.len() / 2) else { continue };
        let line_end = text[pos..].find('\n').map(|k| pos + k).unwrap_or(text.len());
        for k in 0..5.min(line_end - pos) {
            let cursor = pos + k;
            if !text.is_char_boundary(cursor) {
                continue;
            }
            let doc = format!("{}{}", &text[..cursor], &text[line_end..]);
            let r = engine.complete(f, &doc, cursor, &Ticket::detached())?;
            e2e.push(r.ms.total);
            if k == 0 && i % 2 == 0 {
                uncached.push(r.ms.total);
            }
        }
    }
    if !e2e.is_empty() {
        let p50 = pct(&mut e2e, 0.5);
        println!(
            "    end to end         p50 {p50:.0} ms, p95 {:.0} ms over {} typed characters (goal p50 < 100 ms: {:.2} of the limit); first request on a line p50 {:.0} ms",
            pct(&mut e2e, 0.95),
            e2e.len(),
            p50 / 100.0,
            pct(&mut uncached, 0.5)
        );
    }
    let ctx = g.info.context.saturating_sub(64);
    let prompt = code_prompt(&g, engine.root(), &files, ctx.min(1000));
    let (prefix, suffix) = split_near_end(&prompt);
    latency(&format!("built-in, prompt of {} tokens", ctx.min(1000)), &g, prefix, suffix)?;

    if skip_large {
        return Ok(());
    }
    // The 0.5B shape, random weights, Q4_0 (our writer), with the built-in tokenizer.
    let tmp = tempfile::tempdir()?;
    let c = Config {
        arch: Arch::Qwen2,
        vocab_size: 151_936,
        hidden_size: 896,
        intermediate_size: 4864,
        num_hidden_layers: 24,
        num_attention_heads: 14,
        num_key_value_heads: 2,
        rope_theta: 1_000_000.0,
        norm_eps: 1e-6,
        max_position_embeddings: 32_768,
        tie_word_embeddings: true,
    };
    let t = std::time::Instant::now();
    write_gguf(&tmp.path().join("model.gguf"), &c, &random_weights(&c, 1)?, GgmlDType::Q4_0)?;
    let tok = if builtin.join("tokenizer.json").exists() {
        patois_generate::load_tokenizer(&builtin)?
    } else {
        train_tokenizer(
            files.iter().filter_map(|f| std::fs::read_to_string(engine.root().join(f)).ok()),
            2048,
        )?
    };
    tok.save(tmp.path().join("tokenizer.json"), false).map_err(|e| anyhow::anyhow!("{e}"))?;
    let big = Generator::load(tmp.path(), &Device::Cpu)?;
    println!(
        "  qwen2.5-coder-0.5b shape, random weights, q4_0 ({:.0}M parameters, made in {:.0}s)",
        big.info.parameters as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );
    assert_eq!(big.info.fim, FimStyle::Qwen);
    let prompt = code_prompt(&big, engine.root(), &files, 1000);
    let (prefix, suffix) = split_near_end(&prompt);
    latency(
        "0.5B q4_0, 1,000-token prompt (goal: cold < 1,500 ms, warm < 300 ms)",
        &big,
        prefix,
        suffix,
    )
}

/// The cursor 95% into the text: a long prefix and a short suffix.
fn split_near_end(text: &str) -> (&str, &str) {
    let cut = (0..=text.len() * 19 / 20).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
    text.split_at(cut)
}
