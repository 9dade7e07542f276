"""The studio's local API: OpenAI-compatible routes (/v1/…) for other tools and the studio's own
token-level routes (/api/…) for programs, served from the one model worker the page uses."""
