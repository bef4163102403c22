//! `patois/status`: index, model, adapter and drift, and where prompts go; also sent as a
//! notification when any of them changes.

use crate::convert;
use crate::errors::blocking;
use crate::ext::{StatusNotification, StatusParams, StatusReport};
use crate::session::Session;
use tower_lsp_server::jsonrpc::Result;

pub(crate) async fn handle(s: &Session, _: StatusParams) -> Result<StatusReport> {
    report(s).await
}

/// The status; git and the index are read on the blocking pool.
async fn report(s: &Session) -> Result<StatusReport> {
    let e = s.engine()?;
    let status = blocking(move || Ok::<_, std::convert::Infallible>(e.status())).await?;
    let Ok(status) = status;
    let mut report = convert::status(status, s.indexer.is_running());
    report.training = s.idle_training.report();
    Ok(report)
}

/// Sends `patois/status` (nothing before a workspace is open).
pub(crate) async fn send_status(s: &Session) {
    if let Ok(report) = report(s).await {
        s.client.send_notification::<StatusNotification>(report).await;
    }
}
