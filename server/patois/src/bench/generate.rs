//! `patois bench generate`: prefill and decode speed, first token cold and after a
//! one-character edit, and retrieval time with the model's tokenizer, for one GGUF model
//! run by llama.cpp and by our candle decoder in the same run (and the built-in model
//! when it exists).

use crate::cmd::model::{open_engine, ModelArgs};
use crate::IndexLocation;
use anyhow::Result;
use patois_engine::{builtin_model_dir, Engine};
use patois_generate::{Backend, BackendKind, GenOptions, Mode};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

pub fn pct(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * q).round() as usize]
}

/// Real code from the repository, about `tokens` tokens of it.
fn code_prompt(g: &dyn Backend, root: &Path, files: &[String], tokens: usize) -> String {
    let mut text = String::new();
    for f in files {
        if let Ok(t) = std::fs::read_to_string(root.join(f)) {
            text.push_str(&t);
        }
        if g.count(&text) > tokens {
            break;
        }
    }
    let offsets = g.offsets(&text);
    let end = offsets.get(tokens.min(offsets.len()).saturating_sub(1)).map(|o| o.1).unwrap_or(0);
    text[..end].to_string()
}

/// What one model measured.
struct Speed {
    prompt_tokens: usize,
    prefill_tps: f64,
    decode_tps: f64,
    cold_ms: f64,
    warm_ms: f64,
    reused: usize,
}

/// Cold prefill, decode speed, and first token after typing one character.
fn measure(g: &dyn Backend, prefix: &str, suffix: &str, runs: usize) -> Result<Speed> {
    let opts = GenOptions {
        max_tokens: 32,
        mode: Mode::MultiLine,
        max_lines: 10_000,
        ..Default::default()
    };
    let render = |p: &str| render_prompt(g, p, suffix);
    let (mut prefill, mut cold, mut warm, mut decode) = (vec![], vec![], vec![], vec![]);
    let (mut reused, mut prompt_tokens) = (0, 0);
    for i in 0..runs {
        g.clear_cache();
        let p0 = format!("{prefix}{}", "x".repeat(i));
        let c = g.complete(&render(&p0), suffix, &opts, &|| false)?;
        prompt_tokens = c.prompt_tokens;
        prefill.push(c.prompt_tokens as f64 / (c.prefill_ms / 1e3));
        cold.push(c.first_token_ms);
        if c.tokens > 1 {
            decode.push((c.tokens - 1) as f64 / (c.decode_ms / 1e3));
        }
        let w = g.complete(&render(&format!("{p0}y")), suffix, &opts, &|| false)?;
        warm.push(w.first_token_ms);
        reused = w.cache_hit_tokens;
    }
    Ok(Speed {
        prompt_tokens,
        prefill_tps: pct(&mut prefill, 0.5),
        decode_tps: pct(&mut decode, 0.5),
        cold_ms: pct(&mut cold, 0.5),
        warm_ms: pct(&mut warm, 0.5),
        reused,
    })
}

/// Retrieval at sampled cursors with `g`'s tokenizer counting the budget.
fn retrieval_ms(engine: &Engine, g: Arc<dyn Backend>, files: &[String]) -> (f64, f64) {
    engine.set_generator(g);
    let budget = engine.settings().budget;
    let mut ms = Vec::new();
    for f in files.iter().take(60) {
        let Ok(text) = std::fs::read_to_string(engine.root().join(f)) else { continue };
        let cursor = text.floor_char_boundary(text.len() / 2);
        let t = Instant::now();
        if engine.context(f, &text, cursor, budget).is_ok() {
            ms.push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    (pct(&mut ms, 0.5), pct(&mut ms, 0.95))
}

fn report(label: &str, s: &Speed, retrieval: (f64, f64)) {
    println!("  {label}");
    println!("    prompt             {} tokens", s.prompt_tokens);
    println!("    prefill            {:.0} tokens/s (cold, whole prompt)", s.prefill_tps);
    println!("    decode             {:.1} tokens/s", s.decode_tps);
    println!("    first token cold   {:.0} ms", s.cold_ms);
    println!(
        "    first token warm   {:.0} ms after a one-character edit ({} tokens reused)",
        s.warm_ms, s.reused
    );
    println!("    retrieval          p50 {:.1} ms, p95 {:.1} ms", retrieval.0, retrieval.1);
}

/// Token ids confirmed by llama.cpp and by the HF `tokenizers` library, per GGUF
/// pre-tokenizer.
const VECTORS: &[(&str, &str, &[u32])] = &[
    (
        "qwen2",
        "fn main() {\n    let x = 12345;\n}",
        &[8822, 1887, 368, 341, 262, 1077, 856, 284, 220, 16, 17, 18],
    ),
    ("qwen2", "<|fim_prefix|>a<|fim_suffix|>b<|fim_middle|>", &[151659, 64, 151661, 65, 151660]),
    (
        "smollm",
        "fn main() {\n    let x = 12345;\n}",
        &[7853, 1085, 1000, 1662, 472, 1303, 1792, 446, 216, 33, 34, 35, 36, 37, 43, 198, 109],
    ),
    (
        "smollm",
        "    impl<'a> Iterator for Foo<'a> {",
        &[333, 5102, 44, 23, 81, 46, 25826, 1508, 327, 426, 568, 44, 23, 81, 46, 1662],
    ),
];

/// The tokenizer built from the file's metadata against the known vectors and against
/// llama.cpp's own tokenizer on the repository's code.
fn check_tokenizer(path: &Path, llama: &dyn Backend, texts: &[String]) -> Result<()> {
    let tok = patois_generate::tokenizer_from_gguf_file(path)?;
    let mut f = std::fs::File::open(path)?;
    let content = candle_core::quantized::gguf_file::Content::read(&mut f)?;
    let pre = content
        .metadata
        .get("tokenizer.ggml.pre")
        .and_then(|v| v.to_string().ok().cloned())
        .unwrap_or_default();
    let ids = |s: &str| tok.encode(s, false).map(|e| e.get_ids().to_vec()).unwrap_or_default();
    let mut known = 0;
    for (p, text, want) in VECTORS.iter().filter(|(p, _, _)| *p == pre) {
        let got = ids(text);
        if got.len() < want.len() || &got[..want.len()] != *want {
            anyhow::bail!("{p} test vector {text:?}: expected {want:?}, got {got:?}");
        }
        known += 1;
    }
    let agree = texts.iter().filter(|t| ids(t) == llama.encode(t).unwrap_or_default()).count();
    println!(
        "  tokenizer ({pre}) from the GGUF metadata: {known} known test vectors match; same ids as \
         llama.cpp on {agree} of {} files",
        texts.len()
    );
    Ok(())
}

pub fn run(dir: &Path, model: Option<PathBuf>, tokens: usize, skip_candle: bool) -> Result<()> {
    let args = ModelArgs { model, location: IndexLocation { index_dir: None } };
    let engine = open_engine(dir, &args)?;
    let files: Vec<String> = engine.index().with_manifest(|m| {
        m.files.iter().filter(|(_, e)| e.language.is_some()).map(|(p, _)| p.clone()).collect()
    });
    let choice = engine.model_choice();
    println!(
        "bench generate: {} ({}), {} cores",
        choice.path.display(),
        choice.source,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );
    let mut rows: Vec<(String, Speed)> = Vec::new();
    let llama = patois_generate::load_backend(&choice.path, BackendKind::Llama);
    match llama {
        Ok(g) => {
            let texts: Vec<String> = files
                .iter()
                .take(30)
                .filter_map(|f| std::fs::read_to_string(engine.root().join(f)).ok())
                .collect();
            check_tokenizer(&choice.path, g.as_ref(), &texts)?;
            let prompt = code_prompt(g.as_ref(), engine.root(), &files, tokens);
            let (prefix, suffix) = split_near_end(&prompt);
            let s = measure(g.as_ref(), prefix, suffix, 3)?;
            let cold_prompt = render_prompt(g.as_ref(), prefix, suffix);
            report("llama.cpp (in process)", &s, retrieval_ms(&engine, g, &files));
            reference(&choice.path, &cold_prompt, &s);
            rows.push(("llama.cpp".into(), s));
        }
        Err(e) => println!("  llama.cpp: {e:#}"),
    }
    if !skip_candle {
        let g: Arc<dyn Backend> = patois_generate::load_backend(&choice.path, BackendKind::Candle)?;
        let prompt = code_prompt(g.as_ref(), engine.root(), &files, tokens);
        let (prefix, suffix) = split_near_end(&prompt);
        let s = measure(g.as_ref(), prefix, suffix, 1)?;
        report("candle (our decoder), same file", &s, retrieval_ms(&engine, g, &files));
        rows.push(("candle".into(), s));
    }
    let builtin = builtin_model_dir(engine.index().dir());
    if builtin.join("config.json").exists() {
        let g = patois_generate::load_backend(&builtin, BackendKind::Candle)?;
        let n = tokens.min(g.info().context.saturating_sub(64));
        let prompt = code_prompt(g.as_ref(), engine.root(), &files, n);
        let (prefix, suffix) = split_near_end(&prompt);
        let s = measure(g.as_ref(), prefix, suffix, 3)?;
        report("built-in model (candle)", &s, retrieval_ms(&engine, g, &files));
    }
    if let [(a, x), (b, y)] = &rows[..] {
        println!(
            "  {a} / {b}: prefill {:.1}x, decode {:.1}x, first token cold {:.1}x faster",
            x.prefill_tps / y.prefill_tps,
            x.decode_tps / y.decode_tps,
            y.cold_ms / x.cold_ms
        );
    }
    Ok(())
}

/// The prompt text `measure` gives the model for a cold completion.
fn render_prompt(g: &dyn Backend, prefix: &str, suffix: &str) -> String {
    g.info().fim.render(prefix, suffix)
}

/// The reference measured in this run: llama-cpp-python (`PATOIS_PYTHON`, else `python3`)
/// prefills the same prompt and decodes 32 tokens with the same threads and batch size.
/// Absent, it says how to install it; the rest of the benchmark does not need it.
fn reference(model: &Path, prompt: &str, ours: &Speed) {
    let python = std::env::var("PATOIS_PYTHON").unwrap_or_else(|_| "python3".into());
    let run = || -> Result<serde_json::Value> {
        let dir = tempfile::tempdir()?;
        let script = dir.path().join("llama_reference.py");
        std::fs::write(&script, include_str!("llama_reference.py"))?;
        let prompt_file = dir.path().join("prompt.txt");
        std::fs::write(&prompt_file, prompt)?;
        let opts = patois_generate::LlamaOptions::default();
        let out = std::process::Command::new(&python)
            .arg(&script)
            .arg(model)
            .arg(&prompt_file)
            .arg(opts.thread_count().to_string())
            .arg(opts.batch.to_string())
            .output()?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            let last = err.lines().last().unwrap_or("no output").to_string();
            anyhow::bail!("{python} failed: {last}");
        }
        Ok(serde_json::from_slice(&out.stdout)?)
    };
    match run() {
        Ok(r) => {
            let version = r["version"].as_str().unwrap_or("?");
            let tokens = &r["tokens"];
            let prefill = r["prefill"].as_f64().unwrap_or(f64::NAN);
            let decode = r["decode"].as_f64().unwrap_or(f64::NAN);
            println!("  llama.cpp reference: llama-cpp-python {version}, same file and threads");
            println!("    prompt             {tokens} tokens");
            println!(
                "    prefill            {prefill:.0} tokens/s (patois {:.2}x)",
                ours.prefill_tps / prefill
            );
            println!(
                "    decode             {decode:.1} tokens/s (patois {:.2}x)",
                ours.decode_tps / decode
            );
        }
        Err(e) => println!(
            "  llama.cpp reference: not measured ({e:#}); `{python} -m pip install \
             llama-cpp-python==0.3.36` (or `scripts/deps.sh --tests`) adds it"
        ),
    }
}

/// The cursor 95% into the text: a long prefix and a short suffix.
fn split_near_end(text: &str) -> (&str, &str) {
    let cut = text.floor_char_boundary(text.len() * 19 / 20);
    text.split_at(cut)
}
