//! `patois/ask`: a question about the code and its history, answered from the index with
//! each claim cited; the answer so far goes out as `$/progress` while the model writes.

use crate::background::completion::CancelOnDrop;
use crate::convert;
use crate::errors::{blocking, from_engine, invalid};
use crate::ext::{AskParams, AskPartial, AskPartialText, AskProgress, AskResult};
use crate::session::Session;
use patois_engine::{parse_date, Question, Ticket};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tower_lsp_server::jsonrpc::Result;

/// How often the answer so far is sent.
const PROGRESS_EVERY: Duration = Duration::from_millis(200);

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
    tokio::pin!(work);
    let mut tick = tokio::time::interval(PROGRESS_EVERY);
    let mut sent = String::new();
    let asked = loop {
        tokio::select! {
            out = &mut work => break out?.map_err(|e| from_engine(&e))?,
            _ = tick.tick() => {
                let Some(token) = p.partial_result_token.clone() else { continue };
                let text = written.lock().unwrap_or_else(|p| p.into_inner()).clone();
                if text != sent {
                    let value = AskPartialText { text: text.clone() };
                    s.client.send_notification::<AskProgress>(AskPartial { token, value }).await;
                    sent = text;
                }
            }
        }
    };
    drop(guard);
    Ok(convert::asked(asked, engine.root()))
}
