//! `patois ask`: a question about the code and its history, answered from the index by
//! the model with each claim cited, or "not found" when the index has nothing on it.

use crate::cmd::model::{open_engine, ModelArgs};
use anyhow::{Context, Result};
use patois_engine::{parse_date, Question};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct AskArgs {
    /// The question, e.g. "why did `fuse` change?" (names in backticks are looked up).
    pub question: String,
    /// The repository, or a folder in it.
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
    /// Only code and commits under this path (relative to the repository's root).
    #[arg(long)]
    pub path: Option<String>,
    /// Only commits from this date on (YYYY-MM-DD, UTC).
    #[arg(long)]
    pub since: Option<String>,
    #[command(flatten)]
    pub model: ModelArgs,
    #[arg(long)]
    pub json: bool,
}

pub fn ask(args: AskArgs) -> Result<()> {
    let since = match &args.since {
        Some(d) => {
            Some(parse_date(d).with_context(|| format!("--since {d}: expected YYYY-MM-DD"))?)
        }
        None => None,
    };
    let engine = open_engine(&args.dir, &args.model)?;
    let q = Question { text: args.question.clone(), path: args.path.clone(), since };
    let asked = engine.ask(&q, None, &|| false)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&asked)?);
    } else {
        println!("{}", asked.markdown(engine.root()));
    }
    Ok(())
}
