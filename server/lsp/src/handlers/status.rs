//! `patois/status`: index, model, adapter and drift, and where prompts go.

use crate::convert;
use crate::errors::blocking;
use crate::ext::{StatusParams, StatusReport};
use crate::session::Session;
use std::sync::atomic::Ordering;
use tower_lsp_server::jsonrpc::Result;

pub(crate) async fn handle(s: &Session, _: StatusParams) -> Result<StatusReport> {
    s.status_report().await
}

impl Session {
    /// The status; git and the index are read on the blocking pool.
    pub(crate) async fn status_report(&self) -> Result<StatusReport> {
        let e = self.engine()?;
        let status = blocking(move || Ok::<_, std::convert::Infallible>(e.status())).await?;
        let Ok(status) = status;
        let mut report = convert::status(status, self.indexing.load(Ordering::SeqCst));
        report.training = self.idle_training.report();
        Ok(report)
    }
}
