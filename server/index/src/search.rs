//! Reading the index: symbols by name or file, chunks by BM25, history by file.

use crate::error::Result;
use crate::{for_each_token, Index};
use patois_syntax::SymbolKind;
use patois_vcs::FileChange;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, Occur, Query, TermQuery};
use tantivy::schema::{Field, IndexRecordOption, Term, Value};
use tantivy::{DocAddress, Order, Searcher, TantivyDocument};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SymbolHit {
    pub path: String,
    pub name: String,
    pub kind: SymbolKind,
    pub scope: Option<String>,
    pub start_line: u32,
    pub end_line: u32,
    pub signature: String,
    pub doc: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChunkHit {
    pub path: String,
    pub start_line: u32,
    pub end_line: u32,
    pub kind: String,
    pub name: Option<String>,
    pub text: String,
    pub score: f32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommitHit {
    pub id: String,
    pub author: String,
    pub time: i64,
    pub summary: String,
    pub message: String,
    pub pr: Option<u64>,
    pub files: Vec<FileChange>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrHit {
    pub number: u64,
    pub title: String,
    pub text: String,
}

fn term(field: Field, s: &str) -> Box<dyn Query> {
    Box::new(TermQuery::new(Term::from_field_text(field, s), IndexRecordOption::Basic))
}

fn all(qs: Vec<Box<dyn Query>>) -> BooleanQuery {
    BooleanQuery::new(qs.into_iter().map(|q| (Occur::Must, q)).collect())
}

fn text_of(d: &TantivyDocument, f: Field) -> String {
    d.get_first(f).and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}
fn opt_text(d: &TantivyDocument, f: Field) -> Option<String> {
    d.get_first(f).and_then(|v| v.as_str().map(str::to_string))
}
fn num(d: &TantivyDocument, f: Field) -> u32 {
    d.get_first(f).and_then(|v| v.as_u64()).unwrap_or(0) as u32
}

impl Index {
    pub fn searcher(&self) -> Searcher {
        self.reader().searcher()
    }

    fn docs(&self, q: &dyn Query, limit: usize) -> Result<Vec<(f32, TantivyDocument)>> {
        let s = self.searcher();
        let top: Vec<(f32, DocAddress)> =
            s.search(q, &TopDocs::with_limit(limit).order_by_score())?;
        top.into_iter().map(|(score, a)| Ok((score, s.doc(a)?))).collect()
    }

    /// A symbol document as written by this version (a kind it does not know means an
    /// index of another version, which the manifest's version check rebuilds).
    fn symbol_hit(&self, d: &TantivyDocument) -> Option<SymbolHit> {
        let f = self.fields();
        Some(SymbolHit {
            kind: SymbolKind::named(&text_of(d, f.sym_kind))?,
            path: text_of(d, f.file),
            name: text_of(d, f.name),
            scope: opt_text(d, f.scope),
            start_line: num(d, f.start_line),
            end_line: num(d, f.end_line),
            signature: text_of(d, f.signature),
            doc: opt_text(d, f.doc),
        })
    }

    fn chunk_hit(&self, d: &TantivyDocument, score: f32) -> ChunkHit {
        let f = self.fields();
        ChunkHit {
            path: text_of(d, f.file),
            start_line: num(d, f.start_line),
            end_line: num(d, f.end_line),
            kind: text_of(d, f.sym_kind),
            name: opt_text(d, f.name),
            text: text_of(d, f.text),
            score,
        }
    }

    /// Definitions of exactly `name` (case-sensitive).
    pub fn symbols_named(&self, name: &str, limit: usize) -> Result<Vec<SymbolHit>> {
        let f = self.fields();
        let q = all(vec![term(f.kind, "symbol"), term(f.name_exact, name)]);
        Ok(self.docs(&q, limit)?.iter().filter_map(|(_, d)| self.symbol_hit(d)).collect())
    }

    /// Definitions whose scope is `scope` (the methods of a type, say).
    pub fn symbols_in_scope(&self, scope: &str, limit: usize) -> Result<Vec<SymbolHit>> {
        let f = self.fields();
        let q = all(vec![term(f.kind, "symbol"), term(f.scope, scope)]);
        Ok(self.docs(&q, limit)?.iter().filter_map(|(_, d)| self.symbol_hit(d)).collect())
    }

    /// All definitions in a file, in line order.
    pub fn symbols_in_file(&self, path: &str) -> Result<Vec<SymbolHit>> {
        let f = self.fields();
        let q = all(vec![term(f.kind, "symbol"), term(f.file, path)]);
        let mut v: Vec<_> =
            self.docs(&q, 10_000)?.iter().filter_map(|(_, d)| self.symbol_hit(d)).collect();
        v.sort_by_key(|s| (s.start_line, std::cmp::Reverse(s.end_line)));
        Ok(v)
    }

    /// All chunks of a file, in line order.
    pub fn chunks_in_file(&self, path: &str) -> Result<Vec<ChunkHit>> {
        let f = self.fields();
        let q = all(vec![term(f.kind, "chunk"), term(f.file, path)]);
        let mut v: Vec<_> =
            self.docs(&q, 10_000)?.iter().map(|(s, d)| self.chunk_hit(d, *s)).collect();
        v.sort_by_key(|c| c.start_line);
        Ok(v)
    }

    /// Chunks ranked by BM25 against the identifiers of `text` (code tokenizer).
    /// `keep` filters hits before the limit applies.
    pub fn search_chunks(
        &self,
        text: &str,
        limit: usize,
        keep: &dyn Fn(&ChunkHit) -> bool,
    ) -> Result<Vec<ChunkHit>> {
        let Some(q) = self.words_of_kind(text, "chunk") else { return Ok(Vec::new()) };
        let mut out: Vec<ChunkHit> = self
            .docs(&q, limit * 4 + 8)?
            .iter()
            .map(|(score, d)| self.chunk_hit(d, *score))
            .filter(|h| keep(h))
            .collect();
        // Equal scores (copies of the same code) in a stable order, whatever the segment layout.
        out.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then_with(|| (&a.path, a.start_line).cmp(&(&b.path, b.start_line)))
        });
        out.truncate(limit);
        Ok(out)
    }

    /// Documents of `kind` with any of the first 96 distinct tokens of `text` (code
    /// tokenizer), ranked by BM25; `None` when `text` has no token.
    fn words_of_kind(&self, text: &str, kind: &str) -> Option<BooleanQuery> {
        let f = self.fields();
        let mut seen = HashSet::new();
        let mut should: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for_each_token(text, |_, _, t| {
            if should.len() < 96 && seen.insert(t.clone()) {
                let t = Term::from_field_text(f.text, &t);
                should.push((
                    Occur::Should,
                    Box::new(TermQuery::new(t, IndexRecordOption::WithFreqs)),
                ));
            }
        });
        (!should.is_empty()).then(|| {
            BooleanQuery::new(vec![
                (Occur::Must, term(f.kind, kind)),
                (Occur::Must, Box::new(BooleanQuery::new(should))),
            ])
        })
    }

    /// Commits whose messages match the words of `text` (BM25, best first) among those
    /// `keep` accepts; with their scores.
    pub fn search_commits(
        &self,
        text: &str,
        limit: usize,
        keep: &dyn Fn(&CommitHit) -> bool,
    ) -> Result<Vec<(f32, CommitHit)>> {
        let Some(q) = self.words_of_kind(text, "commit") else { return Ok(Vec::new()) };
        let mut out: Vec<(f32, CommitHit)> = self
            .docs(&q, limit * 8 + 8)?
            .iter()
            .map(|(score, d)| (*score, self.commit_hit(d)))
            .filter(|(_, c)| keep(c))
            .collect();
        out.truncate(limit);
        Ok(out)
    }

    /// The newest commits that touched `path`, newest first.
    pub fn commits_touching(&self, path: &str, limit: usize) -> Result<Vec<CommitHit>> {
        let f = self.fields();
        let q = all(vec![term(f.kind, "commit"), term(f.touched, path)]);
        let s = self.searcher();
        let top: Vec<(Option<i64>, DocAddress)> = s.search(
            &q,
            &TopDocs::with_limit(limit).order_by_fast_field::<i64>("time", Order::Desc),
        )?;
        top.into_iter().map(|(_, a)| Ok(self.commit_hit(&s.doc(a)?))).collect()
    }

    /// One commit by its full id.
    pub fn commit(&self, id: &str) -> Result<Option<CommitHit>> {
        let f = self.fields();
        Ok(self
            .docs(&term(f.key, &format!("commit:{id}")), 1)?
            .first()
            .map(|(_, d)| self.commit_hit(d)))
    }

    fn commit_hit(&self, d: &TantivyDocument) -> CommitHit {
        let f = self.fields();
        CommitHit {
            id: text_of(d, f.commit),
            author: text_of(d, f.author),
            time: d.get_first(f.time).and_then(|v| v.as_i64()).unwrap_or(0),
            summary: text_of(d, f.title),
            message: text_of(d, f.text),
            pr: d.get_first(f.pr).and_then(|v| v.as_u64()),
            files: serde_json::from_str(&text_of(d, f.stats)).unwrap_or_default(),
        }
    }

    /// An imported PR by number.
    pub fn pr(&self, number: u64) -> Result<Option<PrHit>> {
        let f = self.fields();
        Ok(self
            .docs(&term(f.key, &format!("pr:{number}")), 1)?
            .first()
            .map(|(_, d)| self.pr_hit(d)))
    }

    /// Imported PRs that touched `path`.
    pub fn prs_touching(&self, path: &str, limit: usize) -> Result<Vec<PrHit>> {
        let f = self.fields();
        let q = all(vec![term(f.kind, "pr"), term(f.touched, path)]);
        Ok(self.docs(&q, limit)?.iter().map(|(_, d)| self.pr_hit(d)).collect())
    }

    fn pr_hit(&self, d: &TantivyDocument) -> PrHit {
        let f = self.fields();
        PrHit {
            number: d.get_first(f.pr).and_then(|v| v.as_u64()).unwrap_or(0),
            title: text_of(d, f.title),
            text: text_of(d, f.text),
        }
    }
}
