//! A stack built by hand: a few layers in front of one provider, called
//! in-process (no HTTP at all) and through the HTTP tier.
//!
//! ```sh
//! cargo run --example custom_stack                       # the built-in mock
//! OPENAI_API_KEY=sk-… cargo run --example custom_stack   # a real OpenAI upstream
//! ```

use std::error::Error;

use http_body_util::{BodyExt, Full};
use llmgate::chat::{ChatRequest, Message, Role};
use llmgate::http::HttpLayer;
use llmgate::llm::{BoxLlmService, LlmBody, LlmRequest, Target};
use llmgate::metrics::{MetricsLayer, Tracker};
use llmgate::preprocess::{Hooks, MaxTokensClamp, PreprocessLayer, SystemPrompt};
use llmgate::provider::{MockProvider, OpenAiProvider, Providers};
use llmgate::route::{ResolveLayer, Resolver};
use llmgate::{ApiError, Format};
use tower::{Layer, ServiceBuilder, ServiceExt};

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    // One provider: OpenAI when a key is set, else the mock.
    let (providers, model) = match std::env::var("OPENAI_API_KEY") {
        Ok(key) => (
            Providers::new().with(
                "upstream",
                OpenAiProvider::builder("upstream", "https://api.openai.com/v1")
                    .api_key(key)
                    .build(),
            ),
            "gpt-4o-mini",
        ),
        Err(_) => (
            Providers::new().with("upstream", MockProvider::new()),
            "mock-1",
        ),
    };

    let tracker = Tracker::new();
    let llm = BoxLlmService::new(
        ServiceBuilder::new()
            .layer(ResolveLayer::new(
                Resolver::new().pattern("*", [Target::new("upstream", model)]),
            ))
            .layer(PreprocessLayer::new(
                Hooks::new()
                    .request(SystemPrompt::prepend("You are terse."))
                    .request(MaxTokensClamp::new(256).fill_missing())
                    // A hook of our own: refuse requests that mention a secret word.
                    .request(|req: &mut LlmRequest| {
                        let text: String = req
                            .chat
                            .messages
                            .iter()
                            .map(|m| m.content.joined_text(" "))
                            .collect();
                        if text.contains("xyzzy") {
                            return Err(ApiError::invalid_request("that word is not allowed here"));
                        }
                        Ok(())
                    }),
            ))
            .layer(MetricsLayer::new(tracker.clone()))
            .service(providers),
    );

    // 1. In-process: a canonical request straight into the LLM tier.
    let chat = ChatRequest::new("any-model", vec![Message::text(Role::User, "Say hi")]);
    let resp = llm
        .clone()
        .oneshot(LlmRequest::new(chat, Format::OpenAi))
        .await?;
    if let LlmBody::Complete(r) = resp.body {
        println!("in-process answer: {:?}", r.content);
    }

    // 2. Through the HTTP tier, as an Anthropic client would call it.
    let http = HttpLayer::new().tracker(tracker.clone()).layer(llm);
    let req = http::Request::post("/v1/messages")
        .header("content-type", "application/json")
        .body(Full::new(bytes::Bytes::from(
            r#"{"model":"claude-haiku-4-5","max_tokens":64,"messages":[{"role":"user","content":"xyzzy?"}]}"#,
        )))?;
    let resp = http.oneshot(req).await?;
    let status = resp.status();
    let body = resp.into_body().collect().await?.to_bytes();
    println!("HTTP {status}: {}", String::from_utf8_lossy(&body));

    println!(
        "tracker: {}",
        serde_json::to_string(&tracker.snapshot().totals)?
    );
    Ok(())
}
