//! Property tests:
//! - any split of an SSE byte stream decodes to the same events;
//! - Anthropic → chat → Anthropic and OpenAI → chat → OpenAI are the
//!   identity on generated requests and responses, unknown fields included;
//! - a generated OpenAI chunk stream, converted and accumulated, equals the
//!   conversion of the equivalent complete response.
//!
//! Generated bodies avoid the few spellings the model normalises on purpose
//! (documented in the crate docs): explicit `null` for an optional request
//! field, an OpenAI response whose `content` is `""` or a list, a response
//! without `refusal`, and the non-standard `reasoning` field.

use llmgate::Format;
use llmgate::convert::{Accumulator, anthropic, openai};
use llmgate::sse::{SseDecoder, SseEvent};
use llmgate::wire::{anthropic as aw, openai as ow};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

// === Building blocks ===

fn ident() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9_]{0,7}"
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{0,12}",
        "\\PC{0,8}",
        Just("line\nbreak \"quoted\" \\ tab\t".to_owned()),
    ]
}

fn non_empty_text() -> impl Strategy<Value = String> {
    "[ -~]{1,12}|\\PC{1,6}"
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<bool>().prop_map(Value::from),
        any::<i32>().prop_map(Value::from),
        (-1e6f64..1e6).prop_map(Value::from),
        text().prop_map(Value::from),
        Just(Value::Null),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(2, 12, 3, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..3).prop_map(Value::from),
            vec(("[a-z]{1,4}", inner), 0..3).prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn json_object() -> impl Strategy<Value = Value> {
    vec(("[a-z]{1,5}", json_value()), 0..3).prop_map(|kv| Value::Object(kv.into_iter().collect()))
}

/// Fields no wire type names (the `x_` prefix keeps them clear of every
/// named field).
fn unknown() -> impl Strategy<Value = Vec<(String, Value)>> {
    vec(("x_[a-z]{1,5}", json_value()), 0..2)
}

/// An object from required fields, optional ones (absent when `None`) and
/// unknown ones.
fn obj(fields: Vec<(&str, Option<Value>)>, extra: Vec<(String, Value)>) -> Value {
    let mut m = Map::new();
    for (k, v) in fields {
        if let Some(v) = v {
            m.insert(k.to_owned(), v);
        }
    }
    for (k, v) in extra {
        m.insert(k, v);
    }
    Value::Object(m)
}

fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        (0u8..=2).prop_map(Value::from),
        (0.0f64..2.0).prop_map(Value::from)
    ]
}

fn schema() -> impl Strategy<Value = Value> {
    (vec(ident(), 0..3), any::<bool>()).prop_map(|(props, strict)| {
        let properties: Map<String, Value> = props
            .iter()
            .map(|p| (p.clone(), json!({"type": "string"})))
            .collect();
        let mut s = json!({"type": "object", "properties": properties, "required": props});
        if strict {
            s["additionalProperties"] = json!(false);
        }
        s
    })
}

// === Anthropic ===

fn a_text_block() -> impl Strategy<Value = Value> {
    (
        text(),
        option::of(Just(json!({"type": "ephemeral"}))),
        unknown(),
    )
        .prop_map(|(t, cc, x)| {
            obj(
                vec![
                    ("type", Some(json!("text"))),
                    ("text", Some(json!(t))),
                    ("cache_control", cc),
                ],
                x,
            )
        })
}

fn a_source() -> impl Strategy<Value = Value> {
    prop_oneof![
        (
            "image/(png|jpeg|gif|webp)",
            "[A-Za-z0-9+/]{0,16}",
            unknown()
        )
            .prop_map(|(mt, d, x)| obj(
                vec![
                    ("type", Some(json!("base64"))),
                    ("media_type", Some(json!(mt))),
                    ("data", Some(json!(d)))
                ],
                x
            )),
        "https://[a-z]{1,8}\\.example/[a-z]{1,5}\\.png"
            .prop_map(|u| json!({"type": "url", "url": u})),
        "file_[a-z0-9]{4}".prop_map(|id| json!({"type": "file", "file_id": id})),
    ]
}

fn a_doc_source() -> impl Strategy<Value = Value> {
    prop_oneof![
        "[A-Za-z0-9+/]{0,16}"
            .prop_map(|d| json!({"type": "base64", "media_type": "application/pdf", "data": d})),
        text().prop_map(|d| json!({"type": "text", "media_type": "text/plain", "data": d})),
        vec(a_text_block(), 0..2).prop_map(|c| json!({"type": "content", "content": c})),
        text().prop_map(|c| json!({"type": "content", "content": c})),
        "https://[a-z]{1,8}\\.example/d\\.pdf".prop_map(|u| json!({"type": "url", "url": u})),
    ]
}

fn a_tool_result_content() -> impl Strategy<Value = Option<Value>> {
    option::of(prop_oneof![
        text().prop_map(Value::from),
        vec(
            prop_oneof![
                a_text_block(),
                a_source().prop_map(|s| json!({"type": "image", "source": s}))
            ],
            0..3
        )
        .prop_map(Value::from),
    ])
}

fn a_block() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => a_text_block(),
        1 => (a_source(), unknown()).prop_map(|(s, x)| obj(vec![("type", Some(json!("image"))), ("source", Some(s))], x)),
        1 => (a_doc_source(), option::of(text()), option::of(text()), unknown()).prop_map(|(s, title, ctx, x)| obj(
            vec![("type", Some(json!("document"))), ("source", Some(s)), ("title", title.map(Value::from)), ("context", ctx.map(Value::from))], x)),
        2 => ("toolu_[A-Za-z0-9]{6}", ident(), json_object(), option::of(Just(json!({"type": "direct"}))), unknown()).prop_map(|(id, name, input, caller, x)| obj(
            vec![("type", Some(json!("tool_use"))), ("id", Some(json!(id))), ("name", Some(json!(name))), ("input", Some(input)), ("caller", caller)], x)),
        2 => ("toolu_[A-Za-z0-9]{6}", a_tool_result_content(), option::of(any::<bool>()), unknown()).prop_map(|(id, content, is_error, x)| obj(
            vec![("type", Some(json!("tool_result"))), ("tool_use_id", Some(json!(id))), ("content", content), ("is_error", is_error.map(Value::from))], x)),
        1 => (text(), option::of("[A-Za-z0-9=]{0,12}"), unknown()).prop_map(|(t, sig, x)| obj(
            vec![("type", Some(json!("thinking"))), ("thinking", Some(json!(t))), ("signature", sig.map(Value::from))], x)),
        1 => "[A-Za-z0-9=]{1,12}".prop_map(|d| json!({"type": "redacted_thinking", "data": d})),
        1 => (ident(), json_value()).prop_map(|(id, input)| json!({"type": "server_tool_use", "id": id, "name": "web_search", "input": {"q": input}})),
    ]
}

fn a_content() -> impl Strategy<Value = Value> {
    prop_oneof![
        text().prop_map(Value::from),
        vec(a_block(), 0..4).prop_map(Value::from)
    ]
}

fn a_tool() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => (ident(), option::of(text()), option::of(schema()), option::of(Just("custom")), option::of(any::<bool>()), unknown())
            .prop_map(|(name, desc, schema, kind, strict, x)| obj(vec![
                ("name", Some(json!(name))), ("description", desc.map(Value::from)), ("input_schema", schema),
                ("type", kind.map(Value::from)), ("strict", strict.map(Value::from))], x)),
        1 => option::of(1u8..5).prop_map(|max| obj(vec![("type", Some(json!("web_search_20250305"))), ("name", Some(json!("web_search"))), ("max_uses", max.map(Value::from))], vec![])),
    ]
}

fn a_tool_choice() -> impl Strategy<Value = Value> {
    (
        prop_oneof![Just("auto"), Just("any"), Just("none"), Just("tool")],
        ident(),
        option::of(any::<bool>()),
        unknown(),
    )
        .prop_map(|(kind, name, dis, x)| {
            obj(
                vec![
                    ("type", Some(json!(kind))),
                    ("name", (kind == "tool").then(|| json!(name))),
                    ("disable_parallel_tool_use", dis.map(Value::from)),
                ],
                x,
            )
        })
}

fn a_request() -> impl Strategy<Value = Value> {
    let head = (
        ident(),
        option::of(1u64..200_000),
        vec(
            (
                prop_oneof![4 => Just("user"), 4 => Just("assistant"), 1 => Just("system")],
                a_content(),
                unknown(),
            ),
            1..5,
        ),
        option::of(prop_oneof![
            text().prop_map(Value::from),
            vec(a_text_block(), 0..3).prop_map(Value::from)
        ]),
        option::of((option::of(text()), unknown())),
        option::of(vec(text(), 0..3)),
        option::of(any::<bool>()),
    );
    let tail = (
        option::of(number()),
        option::of((0.0f64..1.0).prop_map(Value::from)),
        option::of(0u64..500),
        option::of(vec(a_tool(), 0..3)),
        option::of(a_tool_choice()),
        option::of(prop_oneof![
            (1024u64..30000, unknown()).prop_map(|(b, x)| obj(
                vec![
                    ("type", Some(json!("enabled"))),
                    ("budget_tokens", Some(json!(b)))
                ],
                x
            )),
            Just(json!({"type": "disabled"})),
            Just(json!({"type": "adaptive", "display": "summarized"})),
        ]),
        option::of((
            option::of(prop_oneof![Just("low"), Just("high"), Just("max")]),
            option::of(schema()),
            unknown(),
        )),
        unknown(),
    );
    (head, tail).prop_map(
        |(
            (model, max, msgs, system, meta, stops, stream),
            (temp, top_p, top_k, tools, choice, thinking, oc, x),
        )| {
            let messages: Vec<Value> = msgs
                .into_iter()
                .map(|(role, content, x)| {
                    obj(
                        vec![("role", Some(json!(role))), ("content", Some(content))],
                        x,
                    )
                })
                .collect();
            obj(
                vec![
                    ("model", Some(json!(model))),
                    ("max_tokens", max.map(Value::from)),
                    ("messages", Some(Value::from(messages))),
                    ("system", system),
                    (
                        "metadata",
                        meta.map(|(uid, x)| obj(vec![("user_id", uid.map(Value::from))], x)),
                    ),
                    ("stop_sequences", stops.map(Value::from)),
                    ("stream", stream.map(Value::from)),
                    ("temperature", temp),
                    ("top_p", top_p),
                    ("top_k", top_k.map(Value::from)),
                    ("tools", tools.map(Value::from)),
                    ("tool_choice", choice),
                    ("thinking", thinking),
                    (
                        "output_config",
                        oc.map(|(effort, format, x)| {
                            obj(
                                vec![
                                    ("effort", effort.map(Value::from)),
                                    (
                                        "format",
                                        format.map(|s| json!({"type": "json_schema", "schema": s})),
                                    ),
                                ],
                                x,
                            )
                        }),
                    ),
                ],
                x,
            )
        },
    )
}

fn a_usage() -> impl Strategy<Value = Value> {
    (
        0u64..100_000,
        0u64..10_000,
        option::of(0u64..5000),
        option::of(0u64..5000),
        option::of(option::of(0u64..500)),
        option::of(Just("standard")),
    )
        .prop_map(|(i, o, cw, cr, details, tier)| {
            obj(
                vec![
                    ("input_tokens", Some(json!(i))),
                    ("output_tokens", Some(json!(o))),
                    ("cache_creation_input_tokens", cw.map(Value::from)),
                    ("cache_read_input_tokens", cr.map(Value::from)),
                    (
                        "output_tokens_details",
                        details.map(|t| obj(vec![("thinking_tokens", t.map(Value::from))], vec![])),
                    ),
                    ("service_tier", tier.map(Value::from)),
                ],
                vec![],
            )
        })
}

fn a_response() -> impl Strategy<Value = Value> {
    (
        "msg_[A-Za-z0-9]{8}",
        ident(),
        vec(a_block(), 0..4),
        prop_oneof![
            Just(Value::Null),
            Just(json!("end_turn")),
            Just(json!("tool_use")),
            Just(json!("max_tokens")),
            Just(json!("stop_sequence")),
            Just(json!("refusal")),
            Just(json!("pause_turn")),
            Just(json!("x_future"))
        ],
        option::of(text()),
        a_usage(),
        unknown(),
    )
        .prop_map(|(id, model, content, stop, seq, usage, x)| {
            obj(
                vec![
                    ("id", Some(json!(id))),
                    ("type", Some(json!("message"))),
                    ("role", Some(json!("assistant"))),
                    ("model", Some(json!(model))),
                    ("content", Some(Value::from(content))),
                    ("stop_reason", Some(stop)),
                    ("stop_sequence", Some(seq.map_or(Value::Null, Value::from))),
                    ("usage", Some(usage)),
                ],
                x,
            )
        })
}

// === OpenAI ===

fn o_text_part() -> impl Strategy<Value = Value> {
    (text(), unknown()).prop_map(|(t, x)| {
        obj(
            vec![("type", Some(json!("text"))), ("text", Some(json!(t)))],
            x,
        )
    })
}

fn o_user_part() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => o_text_part(),
        1 => (prop_oneof![
                ("image/(png|jpeg)", "[A-Za-z0-9+/]{0,12}").prop_map(|(mt, d)| format!("data:{mt};base64,{d}")),
                "https://[a-z]{1,8}\\.example/i\\.png",
             ], option::of(prop_oneof![Just("auto"), Just("low"), Just("high")]), unknown(), unknown())
            .prop_map(|(url, detail, x, ix)| obj(vec![("type", Some(json!("image_url"))),
                ("image_url", Some(obj(vec![("url", Some(json!(url))), ("detail", detail.map(Value::from))], ix)))], x)),
        1 => (prop_oneof![
                "[A-Za-z0-9+/]{0,12}".prop_map(|d| json!({"file_data": format!("data:application/pdf;base64,{d}")})),
                "file-[a-z0-9]{4}".prop_map(|id| json!({"file_id": id})),
             ], option::of("[a-z]{1,6}\\.pdf"))
            .prop_map(|(mut f, name)| {
                if let Some(n) = name { f["filename"] = json!(n); }
                json!({"type": "file", "file": f})
            }),
        1 => "[A-Za-z0-9]{0,8}".prop_map(|d| json!({"type": "input_audio", "input_audio": {"data": d, "format": "wav"}})),
    ]
}

fn o_tool_call() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => ("call_[A-Za-z0-9]{6}", ident(), prop_oneof![json_object().prop_map(|o| o.to_string()), text()], unknown(), unknown())
            .prop_map(|(id, name, args, x, fx)| obj(vec![("id", Some(json!(id))), ("type", Some(json!("function"))),
                ("function", Some(obj(vec![("name", Some(json!(name))), ("arguments", Some(json!(args)))], fx)))], x)),
        1 => ("call_[A-Za-z0-9]{6}", ident(), text()).prop_map(|(id, name, input)| json!({"id": id, "type": "custom", "custom": {"name": name, "input": input}})),
    ]
}

fn o_message() -> impl Strategy<Value = Value> {
    let string_or_text_parts = prop_oneof![
        text().prop_map(Value::from),
        vec(o_text_part(), 0..3).prop_map(Value::from)
    ];
    prop_oneof![
        (
            prop_oneof![Just("system"), Just("developer")],
            string_or_text_parts.clone(),
            option::of(ident()),
            unknown()
        )
            .prop_map(|(role, c, name, x)| obj(
                vec![
                    ("role", Some(json!(role))),
                    ("content", Some(c)),
                    ("name", name.map(Value::from))
                ],
                x
            )),
        (
            prop_oneof![
                text().prop_map(Value::from),
                vec(o_user_part(), 0..4).prop_map(Value::from)
            ],
            option::of(ident()),
            unknown()
        )
            .prop_map(|(c, name, x)| obj(
                vec![
                    ("role", Some(json!("user"))),
                    ("content", Some(c)),
                    ("name", name.map(Value::from))
                ],
                x
            )),
        (
            option::of(prop_oneof![
                Just(Value::Null),
                text().prop_map(Value::from),
                vec(
                    prop_oneof![
                        o_text_part(),
                        text().prop_map(|r| json!({"type": "refusal", "refusal": r}))
                    ],
                    0..3
                )
                .prop_map(Value::from),
            ]),
            option::of(vec(o_tool_call(), 0..3)),
            option::of(option::of(text())),
            option::of(text()),
            unknown(),
        )
            .prop_map(|(c, calls, refusal, reasoning, x)| obj(
                vec![
                    ("role", Some(json!("assistant"))),
                    ("content", c),
                    ("tool_calls", calls.map(Value::from)),
                    (
                        "refusal",
                        refusal.map(|r| r.map_or(Value::Null, Value::from))
                    ),
                    ("reasoning_content", reasoning.map(Value::from)),
                ],
                x
            )),
        ("call_[A-Za-z0-9]{6}", string_or_text_parts, unknown()).prop_map(|(id, c, x)| obj(
            vec![
                ("role", Some(json!("tool"))),
                ("tool_call_id", Some(json!(id))),
                ("content", Some(c))
            ],
            x
        )),
    ]
}

fn o_tool() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => (ident(), option::of(text()), option::of(schema()), option::of(any::<bool>()), unknown(), unknown())
            .prop_map(|(name, desc, params, strict, x, fx)| obj(vec![("type", Some(json!("function"))),
                ("function", Some(obj(vec![("name", Some(json!(name))), ("description", desc.map(Value::from)),
                    ("parameters", params), ("strict", strict.map(Value::from))], fx)))], x)),
        1 => ident().prop_map(|name| json!({"type": "custom", "custom": {"name": name}})),
    ]
}

fn o_request() -> impl Strategy<Value = Value> {
    let head = (
        ident(),
        vec(o_message(), 1..5),
        option::of(1u64..100_000),
        option::of(1u64..100_000),
        option::of(number()),
        option::of((0.0f64..1.0).prop_map(Value::from)),
        option::of(prop_oneof![
            text().prop_map(Value::from),
            vec(text(), 0..4).prop_map(Value::from)
        ]),
        option::of(any::<bool>()),
        option::of((option::of(any::<bool>()), unknown())),
    );
    let tail = (
        option::of(vec(o_tool(), 0..3)),
        option::of(prop_oneof![
            Just(json!("auto")),
            Just(json!("none")),
            Just(json!("required")),
            ident().prop_map(|n| json!({"type": "function", "function": {"name": n}})),
            Just(json!({"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": []}})),
        ]),
        option::of(any::<bool>()),
        option::of(prop_oneof![
            Just(json!({"type": "json_object"})),
            schema().prop_map(
                |s| json!({"type": "json_schema", "json_schema": {"name": "r", "schema": s}})
            )
        ]),
        (
            option::of(1u32..3),
            option::of(any::<i32>()),
            option::of(any::<bool>()),
        ),
        option::of(prop_oneof![Just("low"), Just("medium"), Just("high")]),
        option::of(ident()),
        option::of(vec((ident(), text()), 0..3)),
        unknown(),
    );
    (head, tail).prop_map(
        |(
            (model, msgs, mt, mct, temp, top_p, stop, stream, so),
            (tools, choice, ptc, rf, (n, seed, logprobs), effort, user, meta, x),
        )| {
            obj(
                vec![
                    ("model", Some(json!(model))),
                    ("messages", Some(Value::from(msgs))),
                    ("max_tokens", mt.map(Value::from)),
                    ("max_completion_tokens", mct.map(Value::from)),
                    ("temperature", temp),
                    ("top_p", top_p),
                    ("stop", stop),
                    ("stream", stream.map(Value::from)),
                    (
                        "stream_options",
                        so.map(|(iu, x)| obj(vec![("include_usage", iu.map(Value::from))], x)),
                    ),
                    ("tools", tools.map(Value::from)),
                    ("tool_choice", choice),
                    ("parallel_tool_calls", ptc.map(Value::from)),
                    ("response_format", rf),
                    ("n", n.map(Value::from)),
                    ("seed", seed.map(Value::from)),
                    ("logprobs", logprobs.map(Value::from)),
                    ("reasoning_effort", effort.map(Value::from)),
                    ("user", user.map(Value::from)),
                    (
                        "metadata",
                        meta.map(|kv| {
                            Value::Object(
                                kv.into_iter().map(|(k, v)| (k, Value::from(v))).collect(),
                            )
                        }),
                    ),
                ],
                x,
            )
        },
    )
}

fn o_usage() -> impl Strategy<Value = Value> {
    (0u64..100_000, 0u64..10_000, any::<bool>(), option::of((0u64..=100, option::of(0u64..10))), option::of(option::of(0u64..100)))
        .prop_map(|(p, c, exact_total, pd, cd)| {
            let mut u = json!({"prompt_tokens": p, "completion_tokens": c, "total_tokens": if exact_total { p + c } else { p + c + 1 }});
            if let Some((pct, audio)) = pd {
                // Cached tokens are part of the prompt.
                let mut d = json!({"cached_tokens": p * pct / 100});
                if let Some(a) = audio {
                    d["audio_tokens"] = json!(a);
                }
                u["prompt_tokens_details"] = d;
            }
            if let Some(r) = cd {
                u["completion_tokens_details"] = obj(vec![("reasoning_tokens", r.map(Value::from))], vec![]);
            }
            u
        })
}

fn o_response() -> impl Strategy<Value = Value> {
    (
        "chatcmpl-[A-Za-z0-9]{8}",
        0u64..2_000_000_000,
        ident(),
        option::of(non_empty_text()),
        option::of(non_empty_text()),
        option::of(non_empty_text()),
        option::of(vec(o_tool_call(), 1..3)),
        prop_oneof![
            Just("stop"),
            Just("length"),
            Just("tool_calls"),
            Just("content_filter"),
            Just("function_call")
        ],
        option::of(o_usage()),
        (unknown(), unknown(), unknown(), option::of(Just("fp_abc"))),
    )
        .prop_map(
            |(
                id,
                created,
                model,
                content,
                refusal,
                reasoning,
                calls,
                finish,
                usage,
                (x, cx, mx, fp),
            )| {
                let message = obj(
                    vec![
                        ("role", Some(json!("assistant"))),
                        ("content", Some(content.map_or(Value::Null, Value::from))),
                        ("refusal", Some(refusal.map_or(Value::Null, Value::from))),
                        ("tool_calls", calls.map(Value::from)),
                        ("reasoning_content", reasoning.map(Value::from)),
                    ],
                    mx,
                );
                let choice = obj(
                    vec![
                        ("index", Some(json!(0))),
                        ("message", Some(message)),
                        ("logprobs", Some(Value::Null)),
                        ("finish_reason", Some(json!(finish))),
                    ],
                    cx,
                );
                obj(
                    vec![
                        ("id", Some(json!(id))),
                        ("object", Some(json!("chat.completion"))),
                        ("created", Some(json!(created))),
                        ("model", Some(json!(model))),
                        ("choices", Some(json!([choice]))),
                        ("usage", usage),
                        ("system_fingerprint", fp.map(Value::from)),
                    ],
                    x,
                )
            },
        )
}

// === SSE framing ===

#[derive(Debug, Clone)]
struct SseCase {
    bytes: Vec<u8>,
    events: Vec<SseEvent>,
}

fn sse_case() -> impl Strategy<Value = SseCase> {
    let event = (
        option::of("[a-z_]{1,10}"),
        vec("[^\r\n]{0,12}", 1..3),
        option::of("[a-z0-9]{1,4}"),
        vec("[^\r\n]{0,8}", 0..2),
    );
    (
        vec(event, 0..6),
        vec(prop_oneof![Just("\n"), Just("\r\n"), Just("\r")], 1..8),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(events, endings, bom, final_blank)| {
            let mut bytes = Vec::new();
            if bom {
                bytes.extend_from_slice(b"\xEF\xBB\xBF");
            }
            let mut k = 0;
            let mut eol = |bytes: &mut Vec<u8>| {
                let mut ending = endings[k % endings.len()];
                // A CR then an LF is one line end (CRLF), not two.
                if ending == "\n" && bytes.last() == Some(&b'\r') {
                    ending = "\r\n";
                }
                bytes.extend_from_slice(ending.as_bytes());
                k += 1;
            };
            let mut expected = Vec::new();
            let n = events.len();
            for (i, (name, data, id, comments)) in events.into_iter().enumerate() {
                for c in &comments {
                    bytes.extend_from_slice(format!(":{c}").as_bytes());
                    eol(&mut bytes);
                }
                if let Some(name) = &name {
                    bytes.extend_from_slice(format!("event: {name}").as_bytes());
                    eol(&mut bytes);
                }
                for line in &data {
                    bytes.extend_from_slice(format!("data: {line}").as_bytes());
                    eol(&mut bytes);
                }
                if let Some(id) = &id {
                    bytes.extend_from_slice(format!("id:{id}").as_bytes());
                    eol(&mut bytes);
                }
                if i + 1 < n || final_blank {
                    eol(&mut bytes);
                }
                expected.push(SseEvent {
                    event: name,
                    data: data.join("\n"),
                    id,
                });
            }
            SseCase {
                bytes,
                events: expected,
            }
        })
}

fn decode_in_pieces(bytes: &[u8], cuts: &[usize]) -> Vec<SseEvent> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    cuts.sort_unstable();
    let mut decoder = SseDecoder::new();
    let mut out = Vec::new();
    let mut at = 0;
    for cut in cuts {
        decoder.feed(&bytes[at..cut], &mut out).unwrap();
        at = cut;
    }
    decoder.feed(&bytes[at..], &mut out).unwrap();
    decoder.finish(&mut out).unwrap();
    out
}

// === Streams: chunks vs complete ===

#[derive(Debug, Clone)]
struct StreamCase {
    complete: Value,
    body: String,
}

/// Cuts `s` into pieces at the given fractions (at char boundaries).
fn pieces(s: &str, cuts: &[u8]) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    let mut idx: Vec<usize> = cuts
        .iter()
        .map(|c| (*c as usize * chars.len()) / 256)
        .collect();
    idx.push(chars.len());
    idx.sort_unstable();
    idx.dedup();
    let mut out = Vec::new();
    let mut at = 0;
    for i in idx {
        if i > at {
            out.push(chars[at..i].iter().collect());
            at = i;
        }
    }
    out
}

fn stream_case() -> impl Strategy<Value = StreamCase> {
    (
        (option::of(non_empty_text()), option::of(non_empty_text()), option::of(non_empty_text())),
        vec(("call_[A-Za-z0-9]{6}", ident(), json_object()), 0..3),
        prop_oneof![Just("stop"), Just("length"), Just("tool_calls"), Just("content_filter")],
        (0u64..10_000, 0u64..1000, option::of(0u64..=100)),
        vec(any::<u8>(), 0..4),
        (any::<bool>(), any::<bool>()),
    )
        .prop_map(|((reasoning, content, refusal), calls, finish, (p, c, cached), cuts, (finish_with_last, usage_with_finish))| {
            let mut usage = json!({"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c});
            if let Some(pct) = cached {
                usage["prompt_tokens_details"] = json!({"cached_tokens": p * pct / 100});
            }
            let tool_calls: Vec<Value> = calls
                .iter()
                .map(|(id, name, args)| json!({"id": id, "type": "function", "function": {"name": name, "arguments": args.to_string()}}))
                .collect();
            let mut message = json!({"role": "assistant", "content": content, "refusal": refusal});
            if let Some(r) = &reasoning {
                message["reasoning_content"] = json!(r);
            }
            if !tool_calls.is_empty() {
                message["tool_calls"] = json!(tool_calls);
            }
            let complete = json!({"id": "chatcmpl-prop", "object": "chat.completion", "created": 1, "model": "gpt-x",
                "choices": [{"index": 0, "message": message, "finish_reason": finish}], "usage": usage});

            let mut deltas: Vec<Value> = vec![json!({"role": "assistant", "content": ""})];
            for (field, value) in [("reasoning_content", &reasoning), ("content", &content), ("refusal", &refusal)] {
                if let Some(v) = value {
                    deltas.extend(pieces(v, &cuts).into_iter().map(|p| json!({ field: p })));
                }
            }
            for (i, (id, name, args)) in calls.iter().enumerate() {
                let frags = pieces(&args.to_string(), &cuts);
                deltas.push(json!({"tool_calls": [{"index": i, "id": id, "type": "function", "function": {"name": name, "arguments": ""}}]}));
                deltas.extend(frags.into_iter().map(|f| json!({"tool_calls": [{"index": i, "function": {"arguments": f}}]})));
            }
            let mut chunks: Vec<Value> = deltas
                .into_iter()
                .map(|d| json!({"choices": [{"index": 0, "delta": d, "finish_reason": null}]}))
                .collect();
            if finish_with_last {
                let last = chunks.last_mut().unwrap();
                last["choices"][0]["finish_reason"] = json!(finish);
            } else {
                chunks.push(json!({"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]}));
            }
            if usage_with_finish {
                chunks.last_mut().unwrap()["usage"] = usage;
            } else {
                chunks.push(json!({"choices": [], "usage": usage}));
            }
            let mut body = String::new();
            for mut ch in chunks {
                ch["id"] = json!("chatcmpl-prop");
                ch["object"] = json!("chat.completion.chunk");
                ch["created"] = json!(1);
                ch["model"] = json!("gpt-x");
                body.push_str(&format!("data: {ch}\n\n"));
            }
            body.push_str("data: [DONE]\n\n");
            StreamCase { complete, body }
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn sse_any_split_decodes_to_the_same_events(case in sse_case(), cuts in vec(any::<usize>(), 0..12)) {
        let whole = decode_in_pieces(&case.bytes, &[]);
        prop_assert_eq!(&whole, &case.events);
        let split = decode_in_pieces(&case.bytes, &cuts);
        prop_assert_eq!(&split, &case.events);
        // One byte at a time too.
        let all: Vec<usize> = (0..case.bytes.len()).collect();
        prop_assert_eq!(decode_in_pieces(&case.bytes, &all), case.events);
    }

    #[test]
    fn anthropic_request_round_trips(value in a_request()) {
        let wire: aw::MessagesRequest = serde_json::from_value(value.clone()).unwrap();
        prop_assert_eq!(&serde_json::to_value(&wire).unwrap(), &value);
        let chat = anthropic::request_from_wire(wire).unwrap();
        let back = anthropic::request_to_wire(chat, &Default::default()).unwrap();
        prop_assert_eq!(serde_json::to_value(&back).unwrap(), value);
    }

    #[test]
    fn anthropic_response_round_trips(value in a_response()) {
        let wire: aw::MessagesResponse = serde_json::from_value(value.clone()).unwrap();
        let back = anthropic::response_to_wire(anthropic::response_from_wire(wire));
        prop_assert_eq!(serde_json::to_value(&back).unwrap(), value);
    }

    #[test]
    fn openai_request_round_trips(value in o_request()) {
        let wire: ow::ChatCompletionRequest = serde_json::from_value(value.clone()).unwrap();
        prop_assert_eq!(&serde_json::to_value(&wire).unwrap(), &value);
        let chat = openai::request_from_wire(wire).unwrap();
        let back = openai::request_to_wire(chat, &Default::default()).unwrap();
        prop_assert_eq!(serde_json::to_value(&back).unwrap(), value);
    }

    #[test]
    fn openai_response_round_trips(value in o_response()) {
        let wire: ow::ChatCompletion = serde_json::from_value(value.clone()).unwrap();
        let chat = openai::response_from_wire(wire, &Default::default()).unwrap();
        let back = openai::response_to_wire(chat, &Default::default());
        prop_assert_eq!(serde_json::to_value(&back).unwrap(), value);
    }

    #[test]
    fn openai_stream_accumulates_to_the_complete_response(case in stream_case()) {
        let complete: ow::ChatCompletion = serde_json::from_value(case.complete.clone()).unwrap();
        let want = openai::response_from_wire(complete, &Default::default()).unwrap();
        let events = crate::common::openai_body_to_events(&case.body, Default::default());
        let mut acc = Accumulator::new(Some(Format::OpenAi));
        for ev in events {
            acc.push(ev).unwrap();
        }
        let got = acc.finish().unwrap();
        prop_assert_eq!(&got.id, &want.id);
        prop_assert_eq!(&got.model, &want.model);
        prop_assert_eq!(&got.content, &want.content);
        prop_assert_eq!(&got.stop_reason, &want.stop_reason);
        prop_assert_eq!(&got.stop_sequence, &want.stop_sequence);
        prop_assert_eq!(&got.usage, &want.usage);
        // And the Anthropic client sees the same message either way.
        let via_stream = anthropic::response_to_wire(got);
        let via_complete = anthropic::response_to_wire(want);
        prop_assert_eq!(serde_json::to_value(via_stream.content).unwrap(), serde_json::to_value(via_complete.content).unwrap());
    }

    #[test]
    fn later_chunks_decode_alike_whether_their_envelope_repeats_or_not(case in stream_case()) {
        // The decoder reads a later chunk that opens with the first one's
        // envelope from its choices on. The same chunks with the envelope
        // first, repeated byte for byte or with `created` varying (read
        // whole), and as generated (choices first), decode alike.
        let reorder = |vary: bool| {
            let mut body = String::new();
            for (i, line) in case.body.lines().filter(|l| !l.is_empty()).enumerate() {
                let data = line.strip_prefix("data: ").unwrap();
                if data == "[DONE]" {
                    body.push_str("data: [DONE]\n\n");
                    continue;
                }
                let mut chunk: serde_json::Map<String, Value> = serde_json::from_str(data).unwrap();
                for key in ["id", "object", "created", "model"] {
                    chunk.remove(key);
                }
                let rest = Value::Object(chunk).to_string();
                let created = 1 + if vary { i } else { 0 };
                body.push_str(&format!(
                    r#"data: {{"id":"chatcmpl-prop","object":"chat.completion.chunk","created":{created},"model":"gpt-x",{}"#,
                    &rest[1..]
                ));
                body.push_str("\n\n");
            }
            body
        };
        let generated = crate::common::openai_body_to_events(&case.body, Default::default());
        let repeated = crate::common::openai_body_to_events(&reorder(false), Default::default());
        let varied = crate::common::openai_body_to_events(&reorder(true), Default::default());
        prop_assert!(matches!(generated.last(), Some(llmgate::chat::ChatEvent::MessageStop)), "{:?}", generated);
        prop_assert_eq!(&repeated, &generated);
        prop_assert_eq!(&varied, &generated);
    }

    #[test]
    fn encoders_write_the_bytes_of_their_wire_frames(case in stream_case()) {
        // With the envelope fields a same-format stream keeps.
        let body = case.body.replace(
            r#""model":"gpt-x""#,
            r#""model":"gpt-x","service_tier":"default","system_fingerprint":"fp_\"x""#,
        );
        let events = crate::common::openai_body_to_events(&body, Default::default());
        prop_assert!(events.len() > 2);
        for upstream in [Some(Format::OpenAi), Some(Format::Anthropic), None] {
            crate::common::assert_encoders_write_their_wire_frames(&events, upstream);
        }
    }

}
