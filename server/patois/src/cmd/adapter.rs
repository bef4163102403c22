//! `patois adapter export --gguf`: the house adapter as a GGUF LoRA, for llama.cpp (which
//! runs the default model here), llama-server and Ollama.

use crate::cmd::model::{open_engine, ModelArgs};
use anyhow::{bail, Result};
use std::path::PathBuf;

#[derive(clap::Subcommand)]
pub enum AdapterCmd {
    /// Write the adapter (PEFT layout) as a GGUF LoRA beside it (`adapter.gguf`).
    Export {
        /// The GGUF format llama.cpp loads (the only export there is).
        #[arg(long)]
        gguf: bool,
        /// The adapter folder [default: .patois/adapters/house].
        adapter: Option<PathBuf>,
        /// Where to write it [default: adapter.gguf in the adapter folder, where patois
        /// looks for it].
        #[arg(long)]
        out: Option<PathBuf>,
        /// The base model the adapter was trained on (--model) [default: the model in effect].
        #[command(flatten)]
        model: ModelArgs,
    },
}

pub fn run(cmd: AdapterCmd) -> Result<()> {
    let AdapterCmd::Export { gguf, adapter, out, model } = cmd;
    if !gguf {
        bail!("say which format: `patois adapter export --gguf` (the one llama.cpp loads)");
    }
    let engine = open_engine(&PathBuf::from("."), &model)?;
    let dir = match adapter.or_else(|| engine.adapter_path()) {
        Some(dir) => dir,
        None => bail!(
            "no adapter at {}; train one with `patois train --base MODEL` or name its folder",
            patois_engine::adapter_dir(engine.index().dir(), "house").display()
        ),
    };
    let base = engine.model_path();
    let out = out.unwrap_or_else(|| dir.join(patois_engine::GGUF_ADAPTER));
    let n = patois_adapter::export_gguf(&dir, &base, &out)?;
    println!(
        "wrote {} ({n} adapted matrices) for {}; patois applies it when llama.cpp runs that model",
        out.display(),
        base.display()
    );
    Ok(())
}
