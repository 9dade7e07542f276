"""Remote OpenAI-compatible engines (llama-server, vLLM, Ollama, LM Studio, another studio) as chain
members: their settings and keys (`store`), the HTTP client (`client`), how the studio's settings
become request fields (`params`), learning mode from log-probabilities (`logprobs`), one answer's
generation (`backend`) and which Models lines name them (`members`)."""
