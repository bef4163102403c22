//! `patois/status`: index, model, adapter and drift, and where prompts go.

use crate::convert;
use crate::ext::{StatusParams, StatusReport};
use crate::session::Session;
use std::sync::atomic::Ordering;
use tower_lsp_server::jsonrpc::Result;

pub(crate) async fn handle(s: &Session, _: StatusParams) -> Result<StatusReport> {
    s.status_report()
}

impl Session {
    pub(crate) fn status_report(&self) -> Result<StatusReport> {
        let e = self.engine()?;
        Ok(convert::status(e.status(), self.indexing.load(Ordering::SeqCst)))
    }
}
