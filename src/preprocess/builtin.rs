use crate::chat::{Content, ContentForm, Message, Part, Role};
use crate::error::ApiError;
use crate::llm::LlmRequest;
use crate::preprocess::RequestHook;
use crate::route::glob_match;

/// Sets the system prompt: before the client's, after it, or instead of it.
///
/// The gateway's text goes into the top-level system prompt, which the
/// encoders send first (OpenAI: a leading system message; Anthropic:
/// `system`). `replace` also removes the client's system and developer
/// messages.
#[derive(Debug, Clone)]
pub struct SystemPrompt {
    text: String,
    mode: Mode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Prepend,
    Append,
    Replace,
}

impl SystemPrompt {
    /// Puts `text` before the client's system prompt.
    pub fn prepend(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            mode: Mode::Prepend,
        }
    }

    /// Puts `text` after the client's system prompt.
    pub fn append(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            mode: Mode::Append,
        }
    }

    /// Replaces the client's system prompt with `text`.
    pub fn replace(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            mode: Mode::Replace,
        }
    }
}

fn as_parts(content: &mut Content) {
    if content.form != ContentForm::Parts {
        content.form = ContentForm::Parts;
    }
}

impl RequestHook for SystemPrompt {
    fn on_request(&self, req: &mut LlmRequest) -> Result<(), ApiError> {
        let chat = &mut req.chat;
        match self.mode {
            Mode::Replace => {
                chat.system = Some(Content::text(self.text.clone()));
                chat.messages
                    .retain(|m| !matches!(m.role, Role::System | Role::Developer));
            }
            Mode::Prepend => match &mut chat.system {
                Some(system) => {
                    as_parts(system);
                    system.parts.insert(0, Part::text(self.text.clone()));
                }
                None => chat.system = Some(Content::text(self.text.clone())),
            },
            Mode::Append => {
                if let Some(system) = &mut chat.system {
                    as_parts(system);
                    system.parts.push(Part::text(self.text.clone()));
                } else {
                    // After the client's leading system messages, if any.
                    let after = chat
                        .messages
                        .iter()
                        .take_while(|m| matches!(m.role, Role::System | Role::Developer))
                        .count();
                    if after == 0 {
                        chat.system = Some(Content::text(self.text.clone()));
                    } else {
                        chat.messages
                            .insert(after, Message::text(Role::System, self.text.clone()));
                    }
                }
            }
        }
        Ok(())
    }
}

/// Caps the output token limit (and sets it when the client gave none, if
/// asked to).
#[derive(Debug, Clone, Copy)]
pub struct MaxTokensClamp {
    max: u64,
    fill: bool,
}

impl MaxTokensClamp {
    /// Caps `max_tokens` at `max`.
    pub fn new(max: u64) -> Self {
        Self { max, fill: false }
    }

    /// Also sets `max_tokens` to the cap when the client gave none.
    pub fn fill_missing(mut self) -> Self {
        self.fill = true;
        self
    }
}

impl RequestHook for MaxTokensClamp {
    fn on_request(&self, req: &mut LlmRequest) -> Result<(), ApiError> {
        match &mut req.chat.max_tokens {
            Some(n) if *n > self.max => *n = self.max,
            None if self.fill => req.chat.max_tokens = Some(self.max),
            _ => {}
        }
        Ok(())
    }
}

/// A request parameter [`DropParams`] can remove.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Param {
    /// `temperature`.
    Temperature,
    /// `top_p`.
    TopP,
    /// `top_k`.
    TopK,
    /// `stop` / `stop_sequences`.
    Stop,
    /// `seed`.
    Seed,
    /// `logprobs`.
    Logprobs,
    /// `parallel_tool_calls` / `disable_parallel_tool_use`.
    ParallelToolCalls,
    /// `response_format` / `output_config.format`.
    ResponseFormat,
    /// `reasoning_effort` / `output_config.effort`.
    ReasoningEffort,
    /// `thinking`.
    Thinking,
    /// `user` / `metadata.user_id`.
    User,
    /// `n`.
    N,
    /// Any other top-level field the client sent, by its wire name.
    Other(String),
}

impl Param {
    /// The parameter for a wire name (`temperature`, `max_tokens`, …).
    pub fn parse(name: &str) -> Param {
        match name {
            "temperature" => Param::Temperature,
            "top_p" => Param::TopP,
            "top_k" => Param::TopK,
            "stop" | "stop_sequences" => Param::Stop,
            "seed" => Param::Seed,
            "logprobs" => Param::Logprobs,
            "parallel_tool_calls" | "disable_parallel_tool_use" => Param::ParallelToolCalls,
            "response_format" => Param::ResponseFormat,
            "reasoning_effort" => Param::ReasoningEffort,
            "thinking" => Param::Thinking,
            "user" => Param::User,
            "n" => Param::N,
            other => Param::Other(other.to_owned()),
        }
    }
}

/// Removes parameters a provider rejects, for every request or only for
/// those routed to matching providers or upstream models.
#[derive(Debug, Clone)]
pub struct DropParams {
    params: Vec<Param>,
    provider: Option<String>,
    model: Option<String>,
}

impl DropParams {
    /// Drops `params` from every request.
    pub fn new(params: impl IntoIterator<Item = Param>) -> Self {
        Self {
            params: params.into_iter().collect(),
            provider: None,
            model: None,
        }
    }

    /// Only when the request is routed to this provider.
    pub fn for_provider(mut self, provider: impl Into<String>) -> Self {
        self.provider = Some(provider.into());
        self
    }

    /// Only when the upstream model matches this glob.
    pub fn for_model(mut self, pattern: impl Into<String>) -> Self {
        self.model = Some(pattern.into());
        self
    }

    /// Removes the parameters from `req` (no matching).
    pub fn apply(&self, chat: &mut crate::chat::ChatRequest) {
        for p in &self.params {
            match p {
                Param::Temperature => chat.temperature = None,
                Param::TopP => chat.top_p = None,
                Param::TopK => chat.top_k = None,
                Param::Stop => chat.stop = None,
                Param::Seed => chat.seed = None,
                Param::Logprobs => chat.logprobs = None,
                Param::ParallelToolCalls => chat.parallel_tool_calls = None,
                Param::ResponseFormat => chat.response_format = None,
                Param::ReasoningEffort => chat.reasoning_effort = None,
                Param::Thinking => chat.thinking = None,
                Param::User => chat.user = None,
                Param::N => chat.n = None,
                Param::Other(name) => {
                    chat.extra.remove(name);
                }
            }
        }
    }

    fn applies(&self, req: &LlmRequest) -> bool {
        let target = req
            .ctx
            .target
            .as_ref()
            .or_else(|| req.ctx.route.as_ref().and_then(|r| r.targets.first()));
        let provider_ok = match (&self.provider, target) {
            (None, _) => true,
            (Some(p), Some(t)) => *p == t.provider,
            (Some(_), None) => false,
        };
        let model_ok = match (&self.model, target) {
            (None, _) => true,
            (Some(glob), Some(t)) => glob_match(glob, &t.model),
            (Some(_), None) => false,
        };
        provider_ok && model_ok
    }
}

impl RequestHook for DropParams {
    fn on_request(&self, req: &mut LlmRequest) -> Result<(), ApiError> {
        if self.applies(req) {
            self.apply(&mut req.chat);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Format;
    use crate::chat::ChatRequest;
    use crate::llm::{Route, Target};

    fn openai_request(messages: Vec<Message>) -> LlmRequest {
        LlmRequest::new(ChatRequest::new("m", messages), Format::OpenAi)
    }

    #[test]
    fn system_prompt_modes() {
        let msgs = || {
            vec![
                Message::text(Role::System, "client"),
                Message::text(Role::User, "hi"),
            ]
        };
        let mut req = openai_request(msgs());
        SystemPrompt::replace("gw").on_request(&mut req).unwrap();
        assert_eq!(req.chat.system.as_ref().unwrap().joined_text(""), "gw");
        assert_eq!(req.chat.messages.len(), 1);

        let mut req = openai_request(msgs());
        SystemPrompt::prepend("gw").on_request(&mut req).unwrap();
        assert_eq!(req.chat.system.as_ref().unwrap().joined_text(""), "gw");
        assert_eq!(
            req.chat.messages[0].role,
            Role::System,
            "the client's system message stays, after"
        );

        let mut req = openai_request(msgs());
        SystemPrompt::append("gw").on_request(&mut req).unwrap();
        assert!(req.chat.system.is_none());
        assert_eq!(req.chat.messages[1].content.joined_text(""), "gw");

        let mut req = openai_request(vec![Message::text(Role::User, "hi")]);
        req.chat.system = Some(Content::text("client"));
        SystemPrompt::append("gw").on_request(&mut req).unwrap();
        assert_eq!(
            req.chat.system.as_ref().unwrap().joined_text("+"),
            "client+gw"
        );
    }

    #[test]
    fn clamp() {
        let mut req = openai_request(vec![]);
        req.chat.max_tokens = Some(100_000);
        MaxTokensClamp::new(4096).on_request(&mut req).unwrap();
        assert_eq!(req.chat.max_tokens, Some(4096));
        req.chat.max_tokens = None;
        MaxTokensClamp::new(4096).on_request(&mut req).unwrap();
        assert_eq!(req.chat.max_tokens, None);
        MaxTokensClamp::new(4096)
            .fill_missing()
            .on_request(&mut req)
            .unwrap();
        assert_eq!(req.chat.max_tokens, Some(4096));
    }

    #[test]
    fn drop_params_only_where_it_applies() {
        let mut req = openai_request(vec![]);
        req.chat.temperature = Some(serde_json::Number::from(1));
        req.chat.seed = Some(3);
        req.chat
            .extra
            .insert("logit_bias".into(), serde_json::json!({}));
        req.ctx.route = Some(Route {
            name: "r".into(),
            targets: vec![Target::new("groq", "llama")],
        });
        DropParams::new([Param::Seed])
            .for_provider("openai")
            .on_request(&mut req)
            .unwrap();
        assert_eq!(req.chat.seed, Some(3));
        DropParams::new([Param::Seed, Param::parse("logit_bias")])
            .for_provider("groq")
            .on_request(&mut req)
            .unwrap();
        assert_eq!(req.chat.seed, None);
        assert!(!req.chat.extra.contains_key("logit_bias"));
        DropParams::new([Param::Temperature])
            .for_model("o*")
            .on_request(&mut req)
            .unwrap();
        assert!(req.chat.temperature.is_some());
        DropParams::new([Param::Temperature])
            .for_model("ll*")
            .on_request(&mut req)
            .unwrap();
        assert!(req.chat.temperature.is_none());
    }
}
