//! The similar-code source: BM25 over the index's chunks, queried with the lines above
//! the cursor; the cursor's own region is left out.

use crate::cursor::CursorContext;
use crate::fusion::item;
use crate::Result;
use crate::{Citation, Item, Request, Source};
use patois_index::{ChunkHit, Index};

pub(crate) fn similar(
    index: &Index,
    req: &Request,
    cx: &CursorContext,
    cap: usize,
) -> Result<Vec<Item>> {
    let (rs, re) = cx.region;
    let keep = |h: &ChunkHit| h.path != req.path || h.end_line < rs || h.start_line > re;
    Ok(index
        .search_chunks(&cx.query_text, cap, &keep)?
        .into_iter()
        .map(|h| {
            let title = h.name.clone().unwrap_or_else(|| h.kind.clone());
            item(
                Source::Similar,
                Citation {
                    path: h.path,
                    start_line: h.start_line,
                    end_line: h.end_line,
                    commit: None,
                    pr: None,
                },
                title,
                h.text,
                h.score,
                "BM25 over the lines above the cursor".into(),
            )
        })
        .collect())
}
