"""The page's words in English and Portuguese (the original Samantha's users are largely Brazilian).
Gradio picks the language from the browser; its Settings panel (footer) switches it."""

from __future__ import annotations

import gradio as gr
from gradio.i18n import I18nData

ENGLISH = {
    "system": "System prompt", "previous": "Previous response", "prompt": "User prompt",
    "prompt_placeholder": "One prompt per line, or items separated by $$$ — press Enter to start",
    "start": "Start", "running": "Running…", "stop_next": "Stop / Next", "stop_all": "Stop all & reset",
    "next_token": "Next token", "raw": "Raw text", "copy_last": "Copy last answer", "copy_all": "Copy all",
    "use_last": "Last answer → previous", "clear": "Clear", "unload": "Unload model",
    "tab_transcript": "Transcript", "tab_learning": "Learning", "tab_compare": "Compare", "tab_code": "Code", "tab_programs": "Programs", "tab_voice": "Voice",
    "tab_html": "HTML view", "tab_models": "Models", "tab_settings": "Settings", "tab_library": "Library",
    "tab_files": "Files", "tab_history": "History", "tab_api": "API",
    "models": "Models", "model_pick": "Models in the folder", "add_model": "Add to Models",
    "refresh_models": "Refresh the list", "model_urls": "Model URLs", "models_folder": "Models folder",
    "use_folder": "Use folder", "testing": "Testing mode: keep only the last downloaded model",
    "prompt_format": "Prompt format", "reset_defaults": "Reset to defaults",
    "preset_deterministic": "Deterministic preset", "preset_stochastic": "Stochastic preset",
    "theme": "Light / dark theme", "fast": "Fast mode (show each answer when it is complete)",
    "load_anyway": "Load anyway when a model needs more memory than is free",
    "engines": "Engines (remote OpenAI-compatible servers)", "engine_name": "Engine name",
    "engine_url": "Base URL (up to and including /v1)", "engine_key": "API key (optional, never shown again)",
    "engine_key_env": "…or read the key from this environment variable", "engine_concurrency": "Answers at once",
    "engine_idle": "Idle timeout (s)", "engine_kind": "Kind", "engine_save": "Save engine",
    "engine_remove": "Remove engine", "engine_list_models": "List its models", "engine_models": "Engine models",
    "engine_add_model": "Add to Models",
}
PORTUGUESE = {
    "system": "Prompt do sistema", "previous": "Resposta anterior", "prompt": "Prompt do usuário",
    "prompt_placeholder": "Um prompt por linha, ou itens separados por $$$ — tecle Enter para iniciar",
    "start": "Iniciar", "running": "Executando…", "stop_next": "Parar / Próxima", "stop_all": "Parar tudo",
    "next_token": "Próximo token", "raw": "Texto puro", "copy_last": "Copiar a última resposta",
    "copy_all": "Copiar tudo", "use_last": "Última resposta → anterior", "clear": "Limpar",
    "unload": "Descarregar o modelo",
    "tab_transcript": "Transcrição", "tab_learning": "Aprendizado", "tab_compare": "Comparar", "tab_code": "Código", "tab_programs": "Programas", "tab_voice": "Voz",
    "tab_html": "Visualização HTML", "tab_models": "Modelos", "tab_settings": "Configurações",
    "tab_library": "Biblioteca", "tab_files": "Arquivos", "tab_history": "Histórico", "tab_api": "API",
    "models": "Modelos", "model_pick": "Modelos na pasta", "add_model": "Adicionar aos modelos",
    "refresh_models": "Atualizar a lista", "model_urls": "URLs dos modelos", "models_folder": "Pasta dos modelos",
    "use_folder": "Usar a pasta", "testing": "Modo de teste: manter só o último modelo baixado",
    "prompt_format": "Formato do prompt", "reset_defaults": "Restaurar o padrão",
    "preset_deterministic": "Predefinição determinística", "preset_stochastic": "Predefinição estocástica",
    "theme": "Tema claro / escuro", "fast": "Modo rápido (mostra cada resposta quando termina)",
    "load_anyway": "Carregar mesmo quando o modelo precisa de mais memória do que a livre",
    "engines": "Motores (servidores remotos compatíveis com OpenAI)", "engine_name": "Nome do motor",
    "engine_url": "URL base (até /v1, inclusive)", "engine_key": "Chave da API (opcional, nunca mais mostrada)",
    "engine_key_env": "…ou ler a chave desta variável de ambiente", "engine_concurrency": "Respostas ao mesmo tempo",
    "engine_idle": "Tempo ocioso máximo (s)", "engine_kind": "Tipo", "engine_save": "Salvar o motor",
    "engine_remove": "Remover o motor", "engine_list_models": "Listar os modelos", "engine_models": "Modelos do motor",
    "engine_add_model": "Adicionar aos modelos",
}
# Keys are prefixed: Gradio's page translates any text equal to a key (a dropdown choice "raw" would
# otherwise show as "Raw text").
PREFIX = "chain-studio."


def _prefixed(words: dict[str, str]) -> dict[str, str]:
    return {PREFIX + key: text for key, text in words.items()}


I18N = gr.I18n(en=_prefixed(ENGLISH), pt=_prefixed(PORTUGUESE), **{"pt-BR": _prefixed(PORTUGUESE)})


def t(key: str) -> I18nData:
    """The page's text for `key`, in the reader's language."""
    if key not in ENGLISH:
        raise KeyError(f"no text {key!r} in app/ui/i18n.py")
    return I18N(PREFIX + key)
