//! `patois context FILE:LINE:COL`: exactly what the model would read.

use crate::cmd::index::open_index;
use crate::IndexLocation;
use anyhow::{Context, Result};
use patois_engine::{Engine, Settings};
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    /// The cursor: FILE:LINE:COL (1-based line and column, column in characters).
    pub position: String,
    #[command(flatten)]
    pub location: IndexLocation,
    /// Budget in characters (tokens of the model's tokenizer when one is loaded).
    #[arg(long, default_value_t = 6000)]
    pub budget: usize,
    #[arg(long)]
    pub json: bool,
}

/// A cursor given on the command line.
pub struct Position {
    pub file: PathBuf,
    pub line: u32,
    pub col: u32,
}

/// Parses `FILE:LINE[:COL]`; a file name may itself contain colons.
pub fn parse_position(s: &str) -> Result<Position> {
    let mut parts = s.rsplitn(3, ':');
    let (a, b, c) = (parts.next(), parts.next(), parts.next());
    let num = |x: Option<&str>| x.and_then(|x| x.parse::<u32>().ok());
    let bad = || anyhow::anyhow!("`{s}` is not FILE:LINE:COL (1-based line and column)");
    match (num(a), num(b), c) {
        (Some(col), Some(line), Some(file)) if line >= 1 && col >= 1 => {
            Ok(Position { file: file.into(), line, col })
        }
        (Some(_), Some(_), Some(_)) => Err(bad()),
        (Some(line), _, _) if line >= 1 => {
            Ok(Position { file: s.rsplit_once(':').unwrap().0.into(), line, col: 1 })
        }
        _ => Err(bad()),
    }
}

/// Byte offset of a 1-based line and character column; the column is clamped to the line.
pub fn byte_offset(text: &str, line: u32, col: u32) -> usize {
    let start = patois_retrieve::line_start(text, line);
    let l = patois_retrieve::nth_line(text, line);
    start + l.char_indices().nth(col.saturating_sub(1) as usize).map(|(i, _)| i).unwrap_or(l.len())
}

/// Reads the document and its path relative to the index root.
pub fn read_document(root: &Path, file: &Path) -> Result<(String, String)> {
    let abs = file.canonicalize().with_context(|| format!("{} does not exist", file.display()))?;
    let rel = abs
        .strip_prefix(root)
        .with_context(|| {
            format!("{} is outside the repository {}", file.display(), root.display())
        })?
        .to_string_lossy()
        .replace('\\', "/");
    let text = std::fs::read_to_string(&abs)
        .with_context(|| format!("{} is not a readable UTF-8 text file", file.display()))?;
    Ok((rel, text))
}

pub fn run(args: Args) -> Result<()> {
    let pos = parse_position(&args.position)?;
    let dir = pos.file.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let index = open_index(dir, &args.location)?;
    // Incremental: only what changed since the last run is re-read.
    index.update(&Default::default(), &patois_index::Quiet)?;
    let (rel, text) = read_document(index.root(), &pos.file)?;
    let cursor = byte_offset(&text, pos.line, pos.col);
    // The engine's retrieval, as the editor gets it (no model is loaded: the budget counts
    // characters).
    let settings = Settings::from_repo(index.root())?;
    let engine = Engine::new(index, settings);
    let t = std::time::Instant::now();
    let r = engine.context(&rel, &text, cursor, args.budget)?;
    let ms = t.elapsed().as_secs_f64() * 1e3;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({ "path": rel, "line": pos.line, "col": pos.col, "ms": ms, "items": r.items })
            )?
        );
        return Ok(());
    }
    println!("context for {rel}:{}:{} ({} items, {ms:.1} ms)", pos.line, pos.col, r.items.len());
    for (i, it) in r.items.iter().enumerate() {
        println!(
            "\n#{} {} {} [{}] score {:.3} (rank {} in {}, {})",
            i + 1,
            it.citation,
            it.title,
            it.source.as_str(),
            it.score.fused,
            it.score.source_rank + 1,
            it.source.as_str(),
            it.score.reason
        );
        for l in it.text.lines().take(6) {
            println!("    {l}");
        }
        let more = it.text.lines().count().saturating_sub(6);
        if more > 0 {
            println!("    … {more} more lines");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions() {
        let p = parse_position("src/a.rs:3:5").unwrap();
        assert_eq!((p.file.to_str().unwrap(), p.line, p.col), ("src/a.rs", 3, 5));
        let p = parse_position("src/a.rs:7").unwrap();
        assert_eq!((p.file.to_str().unwrap(), p.line, p.col), ("src/a.rs", 7, 1));
        assert!(parse_position("src/a.rs").is_err());
        assert!(parse_position("a.rs:0:1").is_err());
    }

    #[test]
    fn offsets_count_characters_not_bytes() {
        let text = "ab\nçé x\n";
        assert_eq!(byte_offset(text, 2, 3), 3 + 4);
        assert_eq!(byte_offset(text, 2, 99), 3 + 6, "clamped to the line end");
        assert_eq!(byte_offset(text, 1, 1), 0);
    }
}
