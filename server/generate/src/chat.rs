//! Chat prompts: messages in the model's own chat format, for answers in prose
//! (explanations, questions), where completions use the fill-in-the-middle format.

use serde::{Deserialize, Serialize};

/// Who says a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// How to answer.
    System,
    /// The request, with its sources.
    User,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: Role,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: Role, content: impl Into<String>) -> ChatMessage {
        ChatMessage { role, content: content.into() }
    }
}

/// The chat formats patois writes itself, when the model carries no template of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatFormat {
    /// `<|im_start|>role … <|im_end|>`: Qwen's and many other models'.
    ChatMl,
    /// A model without chat markers: the messages as text, the answer after `Answer:`.
    Plain,
}

impl ChatFormat {
    /// The format a vocabulary shows: ChatML when its markers are single tokens.
    pub fn detect(is_one_token: impl Fn(&str) -> bool) -> ChatFormat {
        if is_one_token("<|im_start|>") && is_one_token("<|im_end|>") {
            ChatFormat::ChatMl
        } else {
            ChatFormat::Plain
        }
    }

    /// `messages`, ending where the model's answer begins.
    pub fn render(self, messages: &[ChatMessage]) -> String {
        let mut out = String::new();
        match self {
            ChatFormat::ChatMl => {
                for m in messages {
                    out.push_str(&format!(
                        "<|im_start|>{}\n{}<|im_end|>\n",
                        m.role.as_str(),
                        m.content
                    ));
                }
                out.push_str("<|im_start|>assistant\n");
            }
            ChatFormat::Plain => {
                for m in messages {
                    out.push_str(&m.content);
                    out.push_str("\n\n");
                }
                out.push_str("Answer:");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chatml_ends_where_the_assistant_answers() {
        let m = [ChatMessage::new(Role::System, "Be brief."), ChatMessage::new(Role::User, "Why?")];
        let chatml = ChatFormat::ChatMl.render(&m);
        assert_eq!(
            chatml,
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nWhy?<|im_end|>\n<|im_start|>assistant\n"
        );
        assert_eq!(ChatFormat::Plain.render(&m), "Be brief.\n\nWhy?\n\nAnswer:");
        assert_eq!(ChatFormat::detect(|t| t.starts_with("<|im_")), ChatFormat::ChatMl);
        assert_eq!(ChatFormat::detect(|_| false), ChatFormat::Plain);
    }
}
