//! `patois/ask`: a question about the code and its history, answered from the index with
//! each claim cited; the answer so far goes out as `$/progress` while the model writes.

use crate::background::completion::CancelOnDrop;
use crate::convert;
use crate::errors::{blocking, from_engine, invalid};
use crate::ext::{AskParams, AskResult};
use crate::partial;
use crate::session::Session;
use patois_engine::{parse_date, Question, Ticket};
use std::sync::{Arc, Mutex};
use tower_lsp_server::jsonrpc::Result;

pub(crate) async fn handle(s: &Session, p: AskParams) -> Result<AskResult> {
    let engine = s.engine()?;
    let since = match &p.since {
        Some(d) => Some(
            parse_date(d)
                .ok_or_else(|| invalid(format!("since: {d:?} is not a date; write YYYY-MM-DD")))?,
        ),
        None => None,
    };
    let q = Question { text: p.question, path: p.path, since };
    let written = Arc::new(Mutex::new(String::new()));
    // `$/cancelRequest` drops this future: the guard then stops the model.
    let guard = CancelOnDrop(Ticket::detached());
    let (e, w, ticket) = (engine.clone(), written.clone(), guard.0.clone());
    let work = blocking(move || e.ask(&q, Some(w), &|| ticket.is_cancelled()));
    let asked = partial::following(s, p.partial_result_token, &written, work).await?;
    let asked = asked.map_err(|e| from_engine(&e))?;
    drop(guard);
    Ok(convert::asked(asked, engine.root()))
}
