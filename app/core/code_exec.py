"""Running the code the models write, as the chain sees it: the options, the result of one run,
and the rules that turn a result into a stop or into the next answer's previous response.

The runner only knows the `CodeRunner` protocol; app/execution/ implements it with a Jupyter
kernel started from venvs/jupyter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol

from app.core.errors import SettingsError
from app.core.events import STOP_SIGNAL

DEFAULT_TIMEOUT_SECONDS = 60.0
MAX_TIMEOUT_SECONDS = 24 * 3600.0

# status values of a CodeResult
OK = "ok"  # ran to the end
ERROR = "error"  # raised an exception (the traceback is in stderr)
TIMEOUT = "timeout"  # still running at the time limit: interrupted (and restarted if needed)
DIED = "died"  # the kernel process ended (os._exit, a crash); a fresh one replaces it
STOPPED = "stopped"  # the person pressed Stop or Close Python
APP = "app"  # a web app: started in the background, its URL is in `app_url`


@dataclass(frozen=True)
class CodeOptions:
    """What the chain does with the code in answers. Off until the person turns it on."""

    run_code: bool = False  # run each answer's code after the answer
    stop_condition: bool = False  # output that is not empty and not an error ends the run
    feed_output: bool = False  # only the interpreter output (not answer + output) becomes the previous response
    hide_output: bool = False  # keep outputs out of the transcript (still in the code panel and journal)
    timeout: float = DEFAULT_TIMEOUT_SECONDS
    persistent: bool = False  # keep variables between runs (default: a fresh kernel per run)
    pasted: str = ""  # code the person pasted; used instead of each answer's code when it has #IDE
    offline: bool = False  # the code gets no network (needs the sandbox)

    def __post_init__(self) -> None:
        if not 0 < self.timeout <= MAX_TIMEOUT_SECONDS:
            raise SettingsError(f"the code time limit must be more than 0 and at most {MAX_TIMEOUT_SECONDS:.0f} s")

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(frozen=True)
class CodeOutput:
    """One rich output: `mime` is "image/png" (base64 data), "text/html" or "text/plain"."""

    mime: str
    data: str


@dataclass(frozen=True)
class CodeResult:
    """One run of some code, as the transcript, the journal and the CLI's "code" object show it."""

    code: str
    status: str
    stdout: str = ""
    stderr: str = ""
    outputs: tuple[CodeOutput, ...] = ()
    seconds: float = 0.0
    message: str = ""  # what went wrong, said plainly ("timed out after 60 s", "the kernel died …")
    truncated: bool = False  # the output was longer than the cap; head and tail are kept
    app_url: str | None = None

    @property
    def text_output(self) -> str:
        """What the interpreter printed: stdout, then stderr (tracebacks), then plain-text results."""
        plain = [o.data for o in self.outputs if o.mime == "text/plain"]
        return "\n".join(part for part in (self.stdout.rstrip("\n"), self.stderr.rstrip("\n"), *plain) if part)

    def to_record(self) -> dict[str, Any]:
        """The public JSON form (the CLI's "code" object)."""
        return {
            "code": self.code,
            "status": self.status,
            "stdout": self.stdout,
            "stderr": self.stderr,
            "outputs": [{"mime": o.mime, "data": o.data} for o in self.outputs],
            "seconds": round(self.seconds, 4),
            "message": self.message,
            "truncated": self.truncated,
            "app_url": self.app_url,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> "CodeResult":
        return cls(
            code=record["code"], status=record["status"], stdout=record.get("stdout", ""),
            stderr=record.get("stderr", ""),
            outputs=tuple(CodeOutput(o["mime"], o["data"]) for o in record.get("outputs", [])),
            seconds=float(record.get("seconds", 0.0)), message=record.get("message", ""),
            truncated=bool(record.get("truncated", False)), app_url=record.get("app_url"),
        )


class CodeRunner(Protocol):
    """Runs code outside the studio's process."""

    def prepare(self, persistent: bool, offline: bool = False) -> None:
        """Get a kernel ready in the background (called while the model is still writing)."""

    def run(self, code: str, timeout: float, persistent: bool = False,
            should_stop: Callable[[], bool] | None = None, offline: bool = False) -> CodeResult:
        """Run `code` and wait for it (at most `timeout` seconds, or until `should_stop()`);
        `offline`: without network."""


def is_stop_signal(result: CodeResult) -> bool:
    """STOP_SAMANTHA in what the code printed ends the run."""
    return STOP_SIGNAL in result.text_output


def meets_stop_condition(result: CodeResult) -> bool:
    """The "stop condition" option: output that is not empty and not an error ends the run."""
    return result.status == OK and bool(result.text_output.strip() or result.outputs)


OUTPUT_HEADING = "Python Interpreter Output:"  # Samantha's words, which prompt lists may refer to


def feedback_text(answer: str, result: CodeResult | None, only_output: bool = False) -> str:
    """What an answer passes on (the next previous response with feedback, and `[[…]]`), as in
    Samantha: after code ran, the answer, a blank line, "Python Interpreter Output:", a blank line
    and what the interpreter printed (stdout, then stderr with any traceback), so a next prompt
    such as "correct the errors in your previous response" sees them. Code that printed nothing,
    or no code, leaves the answer alone. `only_output` ("feed back only the interpreter output"):
    the printed text alone."""
    output = result.text_output.strip() if result is not None else ""
    if only_output:
        return output
    if not output:
        return answer
    return f"{answer}\n\n{OUTPUT_HEADING}\n\n{output}"

