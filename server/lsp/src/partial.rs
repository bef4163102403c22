//! A request's answer so far, sent while the model writes it: `$/progress` notifications
//! with the client's `partialResultToken`, whose value is `{ text }`.

use crate::ext::{PartialText, TextPartial, TextProgress};
use crate::session::Session;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;
use tower_lsp_server::ls_types::ProgressToken;

/// How often the text so far is sent.
const EVERY: Duration = Duration::from_millis(200);

/// Runs `work` to its end; meanwhile, when the client gave a `token`, sends what `written`
/// holds every [`EVERY`] when it changed.
pub(crate) async fn following<T>(
    s: &Session,
    token: Option<ProgressToken>,
    written: &Mutex<String>,
    work: impl Future<Output = T>,
) -> T {
    tokio::pin!(work);
    let Some(token) = token else { return work.await };
    let mut tick = tokio::time::interval(EVERY);
    let mut sent = String::new();
    loop {
        tokio::select! {
            out = &mut work => return out,
            _ = tick.tick() => {
                let text = written.lock().unwrap_or_else(|p| p.into_inner()).clone();
                if text != sent {
                    let value = PartialText { text: text.clone() };
                    let partial = TextPartial { token: token.clone(), value };
                    s.client.send_notification::<TextProgress>(partial).await;
                    sent = text;
                }
            }
        }
    }
}
