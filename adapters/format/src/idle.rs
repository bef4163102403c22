//! What `patois train --idle` tells the server that started it: one JSON object per line
//! on its stdout. Both sides use these types, so the protocol has one definition.

use serde::{Deserialize, Serialize};

/// One line of an idle training run's output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "camelCase")]
pub enum IdleEvent {
    /// A training step ended.
    #[serde(rename_all = "camelCase")]
    Step { step: usize, loss: f32, tokens_per_s: f64 },
    /// The run ended (a checkpoint when it was stopped; the last line).
    Finished(IdleOutcome),
}

/// How an idle training run ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdleOutcome {
    pub steps: usize,
    pub tokens: usize,
    /// Held-out loss of the base model and of the new adapter.
    pub base_loss: f32,
    pub held_out_loss: f32,
    /// Held-out loss of the adapter in place, which the new one competed with.
    pub previous_loss: Option<f32>,
    /// Whether the new adapter replaced the one in place (its held-out loss was lower).
    pub replaced: bool,
}

impl IdleEvent {
    /// The line the trainer writes (without its newline).
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).expect("an idle event serializes")
    }

    /// A line the trainer wrote; `None` for anything else (a stray print).
    pub fn parse(line: &str) -> Option<IdleEvent> {
        serde_json::from_str(line).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_come_back_as_written() {
        let events = [
            IdleEvent::Step { step: 3, loss: 1.5, tokens_per_s: 120.0 },
            IdleEvent::Finished(IdleOutcome {
                steps: 9,
                tokens: 4096,
                base_loss: 2.0,
                held_out_loss: 1.75,
                previous_loss: None,
                replaced: true,
            }),
        ];
        for e in events {
            assert_eq!(IdleEvent::parse(&e.to_line()), Some(e.clone()));
        }
        assert_eq!(IdleEvent::parse("warning: something else"), None);
        assert!(IdleEvent::Step { step: 1, loss: 1.0, tokens_per_s: 2.0 }
            .to_line()
            .contains("\"tokensPerS\""));
    }
}
