//! Work the server does on its own, beside the requests: model runs nobody waits for yet
//! ([`completion`]), keeping the index fresh ([`indexer`]) and training while the editor
//! is idle ([`idle_training`]). Each owns its state; the session holds them.

pub(crate) mod completion;
pub(crate) mod idle_training;
pub(crate) mod indexer;
