"""The Voice tab: spoken commands (Vosk, this computer's microphone) and answers read aloud
(pyttsx3, played in the browser). Without a microphone, a speech engine or a Vosk model, the tab
says what is missing and how to add it; nothing else on the page is affected."""

from __future__ import annotations

import itertools
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr

from app import settings
from app.core.errors import ChainStudioError
from app.core.events import AnswerFinished, ChainEvent
from app.media.voice_commands import VoiceCommand, parse_commands
from app.services import Services
from app.ui.page import PageHandles, Panel, RunData
from app.ui.panels import vosk_download

DEFAULT_WAKE_WORD = "samantha"
DEFAULT_RATE = 175
POLL_SECONDS = 0.4
COMMANDS_HELP = (
    "Say **“samantha …”** (or your wake word) to put the rest into the user prompt (ending with **“ok”** "
    "sends it at once); **“ok”** or "
    "**“send”** starts; **“stop”** stops; **“read again”** reads the last answer; **“close”** stops "
    "listening. In Portuguese: “enviar”, “pare”, “leia novamente”, “fechar”."
)
# The page's speech queue (page_js.SPEECH_JS) plays each new WAV after the one playing.
SPEAK_JS = "(file) => { const url = file && (file.url || (file[0] && file[0].url)); " \
           "if (url && window.chainStudioSpeak) window.chainStudioSpeak(url); return file; }"
ACTION_JS = ("(action) => { const kind = (action || '').split(':')[0]; "
             "const id = {send: '#start', stop: '#stop-next'}[kind]; "
             "if (id) { const button = document.querySelector(id); if (button) button.click(); } return action; }")
STOP_SPEECH_JS = "() => { if (window.chainStudioSpeechStop) window.chainStudioSpeechStop(); }"
PLAYER_HTML = (
    '<div id="speech-player" style="display:none;gap:8px;align-items:center">'
    '<audio id="speech-audio" controls preload="auto"></audio>'
    '<a id="speech-save" download="chain-studio-speech.wav" href="#">Save WAV</a></div>'
)


@dataclass
class VoicePanel(Panel):
    model_folder: gr.Textbox
    wake_word: gr.Textbox
    listen: gr.Checkbox
    listen_status: gr.Markdown
    heard: gr.Markdown
    timer: gr.Timer
    action: gr.Textbox
    voice: gr.Dropdown
    rate: gr.Slider
    auto_read: gr.Checkbox
    read_prompt: gr.Button
    read_last: gr.Button
    read_all: gr.Button
    stop_reading: gr.Button
    speech_file: gr.File
    speech_status: gr.Markdown
    download: vosk_download.VoskDownloadRow

    def run_inputs(self) -> list[Any]:
        return [self.auto_read, self.voice, self.rate]

    def run_outputs(self) -> list[Any]:
        return [self.speech_file]

    def run_view(self, data: RunData, services: Services) -> ReadAloud | None:
        return ReadAloud(self, data[self.voice], data[self.rate]) if data[self.auto_read] else None


class ReadAloud:
    """"Read each answer aloud": every finished answer becomes a WAV in the page's speech queue."""

    def __init__(self, panel: VoicePanel, voice: str | None, rate: float | None) -> None:
        self.panel = panel
        self.voice = voice
        self.rate = rate
        self.pending: str | None = None

    def on_event(self, event: ChainEvent) -> None:
        if isinstance(event, AnswerFinished) and event.answer.text.strip():
            try:
                self.pending = str(speak(event.answer.text, self.voice, self.rate))
            except ChainStudioError as exc:
                gr.Warning(f"Reading aloud: {exc}")

    def values(self, complete: bool) -> dict[Any, Any]:
        pending, self.pending = self.pending, None
        return {self.panel.speech_file: pending} if pending is not None else {}


def listening_problem(folder: Path) -> str | None:
    """Why spoken commands cannot work here (no Vosk model, no microphone), or None."""
    from app.media import stt

    try:
        stt.check_model_folder(folder)
    except ChainStudioError as exc:
        return str(exc)
    return stt.microphone_problem()


def listening_status(folder: Path) -> str:
    """The tab's listening status before Listen is ticked: what is missing and how to add it, or
    just the commands."""
    problem = listening_problem(folder)
    return f"⚠️ Listening is not available yet: {problem}\n\n{COMMANDS_HELP}" if problem else COMMANDS_HELP


@dataclass
class HeardUpdate:
    """What a batch of recognised speech changes on the page."""

    live: str = ""  # the latest words, partial or final
    prompt: str | None = None  # new user-prompt text
    commands: list[VoiceCommand] = field(default_factory=list)  # send, stop, read_again, close


def apply_heard(heard: list[Any], wake_word: str) -> HeardUpdate:
    """Turn recognised speech (stt.Heard items, oldest first) into page changes: partial results
    only update the live text; final ones are parsed as commands."""
    update = HeardUpdate()
    for item in heard:
        update.live = item.text
        if not item.final:
            continue
        for command in parse_commands(item.text, wake_word or DEFAULT_WAKE_WORD):
            if command.action == "prompt":
                update.prompt = command.text
            else:
                update.commands.append(command)
    return update


def voice_choices() -> tuple[list[tuple[str, str]], str]:
    """The speech engine's voices for the dropdown, and a note when there is no engine."""
    from app.media import tts

    problem = tts.engine_problem()
    if problem:
        return [], f"⚠️ Reading aloud is not available: {problem}"
    return [(v.name, v.id) for v in tts.list_voices()], ""


def build(services: Services | None = None) -> VoicePanel:
    """Lay out the Voice tab (wired by `wire`)."""
    gr.Markdown("#### Spoken commands")
    with gr.Row():
        model_folder = gr.Textbox(label="Vosk model folder", value=str(settings.vosk_model_dir()), lines=1,
                                  elem_id="vosk-folder", scale=3,
                                  info="An unzipped model from alphacephei.com/vosk/models, or one downloaded below")
        wake_word = gr.Textbox(label="Wake word", value=DEFAULT_WAKE_WORD, lines=1, elem_id="wake-word", scale=1)
    download = vosk_download.build()
    listen = gr.Checkbox(label="Voice: listen for commands", value=False, elem_id="voice-listen")
    # What is missing is said when the tab opens (looking for a microphone loads the audio library:
    # not at every start of the studio).
    listen_status = gr.Markdown(COMMANDS_HELP, elem_id="voice-status")
    heard = gr.Markdown("", elem_id="voice-heard")
    timer = gr.Timer(POLL_SECONDS, active=False)
    action = gr.Textbox(visible=False, elem_id="voice-action")
    gr.Markdown("#### Reading aloud")
    choices, note = voice_choices()
    with gr.Row():
        voice = gr.Dropdown(choices=choices, value=None, label="Voice (empty: the system's default)",
                            elem_id="tts-voice", scale=3)
        rate = gr.Slider(80, 400, value=DEFAULT_RATE, step=5, label="Words per minute", elem_id="tts-rate", scale=2)
    auto_read = gr.Checkbox(label="Read each answer aloud when it ends", value=False, elem_id="auto-read")
    with gr.Row():
        read_prompt = gr.Button("Read the prompt", size="sm", elem_id="read-prompt")
        read_last = gr.Button("Read the last answer", size="sm", elem_id="read-last")
        read_all = gr.Button("Read all answers", size="sm", elem_id="read-all")
        stop_reading = gr.Button("Stop reading", size="sm", elem_id="stop-reading")
    speech_status = gr.Markdown(note, elem_id="speech-status")
    speech_file = gr.File(visible=False, elem_id="speech-file")
    return VoicePanel(model_folder, wake_word, listen, listen_status, heard, timer, action, voice, rate, auto_read,
                      read_prompt, read_last, read_all, stop_reading, speech_file, speech_status, download)


KEEP_WAVS = 100  # the speech folder keeps the newest WAVs (for replay and Save WAV), not all of them


def speak(text: str, voice: str | None, rate: float | None) -> Path:
    """Write `text` as a WAV in the speech folder (Markdown, code and special tokens left out)."""
    from app.media import tts

    folder = settings.speech_dir()
    path = tts.synthesize(text, folder / f"speech-{uuid.uuid4().hex[:12]}.wav", voice=voice or None,
                          rate=int(rate or DEFAULT_RATE))
    prune_speech(folder)
    return path


def prune_speech(folder: Path, keep: int = KEEP_WAVS) -> int:
    """Delete all but the `keep` newest speech WAVs; returns how many were deleted."""
    wavs = sorted(folder.glob("speech-*.wav"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in wavs[keep:]:
        old.unlink(missing_ok=True)
    return len(wavs[keep:])


class _Listeners:
    """One microphone listener per browser tab (started by its Voice checkbox)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_session: dict[str, Any] = {}

    def start(self, session: str, folder: Path) -> None:
        from app.media import stt

        problem = listening_problem(folder)
        if problem:
            raise ChainStudioError(problem)
        self.stop(session)
        listener = stt.Listener(stt.MicrophoneSource(), stt.Transcriber(folder))
        listener.start()
        with self._lock:
            self._by_session[session] = listener

    def drain(self, session: str) -> tuple[list[Any], str | None]:
        """What the tab's listener heard since the last call, and why it ended if it did."""
        with self._lock:
            listener = self._by_session.get(session)
        if listener is None:
            return [], None
        heard = []
        while not listener.heard.empty():
            heard.append(listener.heard.get_nowait())
        if not listener.running:
            self.stop(session)
            return heard, f"listening ended: {listener.error}" if listener.error else "listening ended"
        return heard, None

    def stop(self, session: str) -> bool:
        """Stop the tab's listener; False when it had none."""
        with self._lock:
            listener = self._by_session.pop(session, None)
        if listener is not None:
            listener.stop()
        return listener is not None

    def stop_all(self) -> None:
        with self._lock:
            sessions = list(self._by_session)
        for session in sessions:
            self.stop(session)


def wire(panel: VoicePanel, services: Services, page: PageHandles) -> None:
    """Connect the tab; Stop/Next and Stop all also stop the reading."""
    prompt, last_answer, entries = page.prompt, page.last_answer, page.entries
    stop_buttons = [page.stop_next, page.stop_all]
    listeners = _Listeners()
    services.on_close(listeners.stop_all)
    services.on_session_close(listeners.stop)
    counter = itertools.count(1)

    def session_of(request: gr.Request) -> str:
        return request.session_hash or "anonymous"

    def read(text: str | None, voice: str | None, rate: float | None) -> tuple[Any, str]:
        if not (text or "").strip():
            return gr.update(), "⚠️ There is nothing to read."
        try:
            path = speak(text or "", voice, rate)
        except ChainStudioError as exc:
            return gr.update(), f"⚠️ {exc}"
        return str(path), f"Reading {len(text or ''):,} characters…"

    def read_answers(shown: list, voice: str | None, rate: float | None) -> tuple[Any, str]:
        texts = [entry.text for entry in shown or [] if getattr(entry, "kind", "") == "answer" and entry.text]
        return read("\n\n".join(texts), voice, rate)

    def toggle(on: bool, folder: str, request: gr.Request) -> tuple[Any, Any, str]:
        session = session_of(request)
        if not on:
            # Unticked by a refusal (or by "close"): keep the message that says why.
            stopped = listeners.stop(session)
            return gr.update(), gr.Timer(active=False), ("Not listening. " + COMMANDS_HELP) if stopped else gr.update()
        try:
            listeners.start(session, Path(folder or "").expanduser())
        except ChainStudioError as exc:
            return gr.update(value=False), gr.Timer(active=False), f"⚠️ {exc}"
        return gr.update(), gr.Timer(active=True), "🎙️ Listening… " + COMMANDS_HELP

    def tick(wake: str, answer: str, voice: str | None, rate: float | None, request: gr.Request) -> tuple:
        session = session_of(request)
        heard, ended = listeners.drain(session)
        update = apply_heard(heard, wake)
        prompt_value = update.prompt if update.prompt is not None else gr.update()
        action, speech, listen, timer, status = gr.update(), gr.update(), gr.update(), gr.update(), gr.update()
        speech_status = gr.update()
        for command in update.commands:
            if command.action in ("send", "stop"):
                action = f"{command.action}:{next(counter)}"
            elif command.action == "read_again":
                speech, speech_status = read(answer, voice, rate)
            elif command.action == "close":
                listeners.stop(session)
                ended = ended or "listening closed by voice"
        if ended:
            listen, timer, status = gr.update(value=False), gr.Timer(active=False), f"{ended}. " + COMMANDS_HELP
        live = f"Heard: *{update.live}*" if update.live else gr.update()
        return live, prompt_value, action, speech, speech_status, listen, timer, status

    def folder_changed(folder: str) -> str:
        return listening_status(Path(folder or "").expanduser())

    for shown in (panel.model_folder.blur, *([panel.tab.select] if panel.tab else [])):
        shown(folder_changed, panel.model_folder, panel.listen_status)
    vosk_download.wire(panel.download, panel.model_folder, panel.listen_status, folder_changed)
    panel.listen.change(toggle, [panel.listen, panel.model_folder], [panel.listen, panel.timer, panel.listen_status])
    panel.timer.tick(tick, [panel.wake_word, last_answer, panel.voice, panel.rate],
                     [panel.heard, prompt, panel.action, panel.speech_file, panel.speech_status, panel.listen,
                      panel.timer, panel.listen_status], show_progress="hidden")
    panel.action.change(None, panel.action, None, js=ACTION_JS)
    panel.speech_file.change(None, panel.speech_file, None, js=SPEAK_JS)
    panel.read_prompt.click(read, [prompt, panel.voice, panel.rate], [panel.speech_file, panel.speech_status])
    panel.read_last.click(read, [last_answer, panel.voice, panel.rate], [panel.speech_file, panel.speech_status])
    panel.read_all.click(read_answers, [entries, panel.voice, panel.rate], [panel.speech_file, panel.speech_status])
    panel.stop_reading.click(None, None, None, js=STOP_SPEECH_JS)
    for button in stop_buttons:
        button.click(None, None, None, js=STOP_SPEECH_JS if button.elem_id == "stop-all" else NEXT_SPEECH_JS)


NEXT_SPEECH_JS = "() => { if (window.chainStudioSpeechNext) window.chainStudioSpeechNext(); }"
