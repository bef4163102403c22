//! Training the house style: what is stable in a repository (style, naming, idioms)
//! learned from it; what changes is left to retrieval. Selects the data (held-out newest
//! files, volatile files left to retrieval) and trains the built-in model from scratch or
//! a LoRA adapter on a base model, saved in the PEFT layout by `patois-adapter`.

mod allocator;
pub mod data;
mod error;
pub mod train;

pub use error::Error;
pub use train::{
    eval_loss, train_builtin, train_lora, Silent, TrainOptions, TrainProgress, TrainReport,
};
