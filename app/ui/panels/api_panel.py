"""The API tab: where other tools reach this studio (the OpenAI-compatible /v1 and the studio's
/api), the token they need (masked until the person asks to see it; copy button either way), and
ready-made curl and openai snippets that read the token from $CHAIN_STUDIO_API_TOKEN, so a copied
snippet never carries it. A line says what the model is doing for the API right now."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from app.api.turns import API_HOLDER
from app.services import Services
from app.ui.page import PageHandles, Panel

ACTIVITY_SECONDS = 2.0
IDLE = "The model is not serving an API request."
BUSY = "🔌 **Serving an API request** now: page runs wait for it, in turn."


@dataclass
class ApiPanel(Panel):
    base_url: gr.Textbox
    token: gr.Textbox
    show_token: gr.Checkbox
    curl: gr.Code
    python: gr.Code
    activity: gr.Markdown
    timer: gr.Timer


def curl_snippet(base: str, model: str) -> str:
    return (f"curl {base}/v1/chat/completions \\\n"
            '  -H "Authorization: Bearer $CHAIN_STUDIO_API_TOKEN" -H "Content-Type: application/json" \\\n'
            f"  -d '{{\"model\": \"{model}\", \"messages\": [{{\"role\": \"user\", \"content\": \"Hello\"}}]}}'\n")


def python_snippet(base: str, model: str) -> str:
    return ("import os\n"
            "from openai import OpenAI\n\n"
            f'client = OpenAI(base_url="{base}/v1", api_key=os.environ["CHAIN_STUDIO_API_TOKEN"])\n'
            f'reply = client.chat.completions.create(model="{model}",\n'
            '                                       messages=[{"role": "user", "content": "Hello"}])\n'
            "print(reply.choices[0].message.content)\n")


def base_url(request: gr.Request | None) -> str:
    """The address this page was opened at: what a tool on this computer (or, with --listen, on
    another one) calls."""
    host = (request.headers.get("host") if request is not None else None) or "127.0.0.1:7860"
    return f"http://{host}"


def activity(services: Services) -> str:
    return BUSY if services.run_lock.holder == API_HOLDER else IDLE


def build(services: Services | None = None) -> ApiPanel:
    """Lay out the tab (filled in when the page loads, wired by `wire`)."""
    gr.Markdown("Other tools reach the studio's models here: an **OpenAI-compatible** API (`/v1/models`, "
                "`/v1/chat/completions`, `/v1/completions`) and the studio's own (`/api/sample`, `/api/chain`, "
                "`/api/tokenize`, …; see the README's API section). Every request needs the token.")
    base = gr.Textbox(label="Base URL", interactive=False, elem_id="api-base", buttons=["copy"])
    with gr.Row():
        token = gr.Textbox(label="API token (also in api_token in the data folder)", type="password",
                           interactive=False, elem_id="api-token", buttons=["copy"], scale=4)
        show = gr.Checkbox(label="Show the token", value=False, elem_id="api-show-token", scale=1)
    gr.Markdown("The snippets read the token from `CHAIN_STUDIO_API_TOKEN`: copy the token, then "
                "`export CHAIN_STUDIO_API_TOKEN=…` in the shell that runs them.")
    curl = gr.Code(language="shell", label="curl", interactive=False, elem_id="api-curl", buttons=["copy"])
    python = gr.Code(language="python", label="Python (openai)", interactive=False, elem_id="api-python",
                     buttons=["copy"])
    activity_line = gr.Markdown(IDLE, elem_id="api-activity")
    timer = gr.Timer(ACTIVITY_SECONDS)
    return ApiPanel(base, token, show, curl, python, activity_line, timer)


def wire(panel: ApiPanel, services: Services, page: PageHandles) -> None:
    """Fill the tab in when the page loads; keep the activity line current."""
    from app.api.token import api_token

    def fill(request: gr.Request) -> tuple[Any, ...]:
        base = base_url(request)
        files = services.model_files()
        model = files[0].name if files else "MODEL.gguf"
        return base, api_token(), curl_snippet(base, model), python_snippet(base, model)

    page.blocks.load(fill, None, [panel.base_url, panel.token, panel.curl, panel.python], queue=False,
                     show_progress="hidden")
    panel.show_token.change(lambda shown: gr.update(type="text" if shown else "password"), panel.show_token,
                            panel.token, queue=False, show_progress="hidden")
    panel.timer.tick(lambda: activity(services), None, panel.activity, queue=False, show_progress="hidden")
