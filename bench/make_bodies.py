"""Writes the request bodies of the load benchmark into a directory."""
import json, sys

out = sys.argv[1]

def write(name, obj):
    with open(f"{out}/{name}.json", "w") as f:
        json.dump(obj, f, separators=(",", ":"))

user = [{"role": "user", "content": "In two short sentences, say what a reverse proxy does and why a gateway in front of several model providers needs one."}]
# ~200 bytes each.
write("small_openai", {"model": "gpt-bench", "max_tokens": 64, "messages": user})
write("small_anthropic", {"model": "claude-bench", "max_tokens": 64, "messages": user})

# The ~30 KB request of the criterion bench: system, 10 tools, 20 tool turns.
tools = [{
    "name": f"tool_{i}_{['read_file','write_file','search','run_shell','list_dir'][i % 5]}",
    "description": f"Tool number {i}. " + "It does something useful with the workspace and returns a result. " * 3,
    "input_schema": {"type": "object", "properties": {
        "path": {"type": "string", "description": "A path relative to the workspace root."},
        "pattern": {"type": "string", "description": "A glob or a regular expression."},
        "limit": {"type": "integer", "minimum": 1, "maximum": 1000},
        "recursive": {"type": "boolean"}}, "required": ["path"]}} for i in range(10)]
msgs = [{"role": "user", "content": "Please refactor the parser module and make the tests pass."}]
for t in range(20):
    tid = f"toolu_01{t:022d}"
    msgs.append({"role": "assistant", "content": [
        {"type": "text", "text": f"Step {t}: I will look at the next file to understand how it is used."},
        {"type": "tool_use", "id": tid, "name": f"tool_{t % 10}_read_file",
         "input": {"path": f"src/module_{t}/parser.rs", "limit": 200, "recursive": False}}]})
    msgs.append({"role": "user", "content": [{"type": "tool_result", "tool_use_id": tid,
        "content": f"// file src/module_{t}/parser.rs\n" + "fn parse(input: &str) -> Result<Ast, Error> { let tokens = lex(input)?; build(tokens) }\n" * 9}]})
large_anthropic = {"model": "claude-bench", "max_tokens": 8192,
    "system": [{"type": "text", "text": "You are a careful coding agent. " * 40, "cache_control": {"type": "ephemeral"}}],
    "tools": tools, "messages": msgs, "metadata": {"user_id": "user_0123456789"}}
write("large_anthropic", large_anthropic)

# The same conversation as an OpenAI client would send it.
omsgs = [{"role": "system", "content": "You are a careful coding agent. " * 40}]
for m in msgs:
    if isinstance(m["content"], str):
        omsgs.append({"role": m["role"], "content": m["content"]})
    elif m["role"] == "assistant":
        text = "".join(b["text"] for b in m["content"] if b["type"] == "text")
        calls = [{"id": b["id"], "type": "function", "function": {"name": b["name"], "arguments": json.dumps(b["input"], separators=(",", ":"))}}
                 for b in m["content"] if b["type"] == "tool_use"]
        omsgs.append({"role": "assistant", "content": text, "tool_calls": calls})
    else:
        for b in m["content"]:
            omsgs.append({"role": "tool", "tool_call_id": b["tool_use_id"], "content": b["content"]})
otools = [{"type": "function", "function": {"name": t["name"], "description": t["description"], "parameters": t["input_schema"]}} for t in tools]
write("large_openai", {"model": "gpt-bench", "max_tokens": 8192, "tools": otools, "messages": omsgs, "user": "user_0123456789"})

# Streams: 100 content events each.
stream_user = [{"role": "user", "content": "Stream please. mock:chunks=100"}]
write("stream_openai", {"model": "gpt-bench", "max_tokens": 200, "stream": True, "stream_options": {"include_usage": True}, "messages": stream_user})
write("stream_anthropic", {"model": "claude-bench", "max_tokens": 200, "stream": True, "messages": stream_user})
# Slow streams, for memory: one event a second, for a minute.
slow_user = [{"role": "user", "content": "Hold on. mock:chunks=60 mock:interval_ms=1000"}]
write("slow_anthropic", {"model": "claude-bench", "max_tokens": 200, "stream": True, "messages": slow_user})
