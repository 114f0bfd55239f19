"""Reads one reply through a real client library and prints what the
application sees, as JSON: the text it received, how the reply ended
(finish reason) and the error the library raised, if any.

usage: read_reply.py (ollama|openai) (stream|whole) BASE_URL [API_KEY]
"""
import json
import sys

library, mode, base = sys.argv[1], sys.argv[2], sys.argv[3]
key = sys.argv[4] if len(sys.argv) > 4 else None
stream = mode == "stream"
seen = {"text": "", "finish": None, "error": None, "error_type": None}
messages = [{"role": "user", "content": "hi"}]

try:
    if library == "ollama":
        import ollama

        headers = {"Authorization": f"Bearer {key}"} if key else None
        client = ollama.Client(host=base, headers=headers)
        reply = client.chat(model="m", messages=messages, stream=stream)
        for part in reply if stream else [reply]:
            seen["text"] += part.message.content or ""
            seen["finish"] = part.done_reason or seen["finish"]
    else:
        import openai

        client = openai.OpenAI(base_url=base + "/v1", api_key=key or "unused", max_retries=0)
        reply = client.chat.completions.create(model="m", messages=messages, stream=stream)
        for chunk in reply if stream else [reply]:
            for choice in chunk.choices:
                part = choice.delta if stream else choice.message
                seen["text"] += part.content or ""
                seen["finish"] = choice.finish_reason or seen["finish"]
except Exception as e:  # what the application would catch
    seen["error"] = str(e)
    seen["error_type"] = type(e).__name__
    seen["status"] = getattr(e, "status_code", None)

print(json.dumps(seen))
