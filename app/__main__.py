"""`python -m app [ui|serve|program|chain|replay|diff|next-tokens|demo-model|info|say|voices] ...`: the studio's command line. Nothing heavy at import."""

from __future__ import annotations

import argparse
import os
import sys

from app.core.errors import ChainStudioError
from app.ui_defaults import DEFAULT_PORT


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--models-dir",
        metavar="DIR",
        default=argparse.SUPPRESS,  # so a value given before the sub-command is not reset
        help="folder of GGUF models (default: $CHAIN_STUDIO_MODELS_DIR, else models/ in the data folder)",
    )
    parser = argparse.ArgumentParser(
        prog="python -m app",
        description="Chain Studio: chain local GGUF language models, offline.",
        parents=[common],
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    ui = commands.add_parser("ui", parents=[common], help="open the studio in the browser (default)")
    ui.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port to serve on (default {DEFAULT_PORT})")
    ui.add_argument("--listen", action="store_true", help="serve on all network interfaces (needs --password)")
    ui.add_argument("--password", help="password for --listen (or set CHAIN_STUDIO_PASSWORD)")
    ui.add_argument("--no-browser", action="store_true", help="do not open a browser tab")
    ui.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                    help="another host name the page may be opened by (repeat; the studio refuses "
                         "requests for names it does not know, against DNS rebinding)")
    ui.add_argument("--allow-origin", action="append", default=[], metavar="URL",
                    help="a web app (scheme://host[:port]) that may call the API from a browser (repeat); it still "
                         "needs the token, and the page stays closed to it")

    serve = commands.add_parser("serve", parents=[common],
                                help="serve the API (OpenAI-compatible /v1 and the studio's /api) without the page")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port to serve on (default {DEFAULT_PORT})")
    serve.add_argument("--listen", action="store_true", help="serve on all network interfaces (needs --password)")
    serve.add_argument("--password", help="required with --listen (or set CHAIN_STUDIO_PASSWORD); the API "
                                          "always asks for its token as well")
    serve.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                       help="another host name the API may be reached by (repeat)")
    serve.add_argument("--allow-origin", action="append", default=[], metavar="URL",
                       help="a web app (scheme://host[:port]) that may call the API from a browser (repeat); it still "
                            "needs the token, and the page stays closed to it")

    program = commands.add_parser("program", parents=[common],
                                  help="run a prompt program (a Python file using the SDK) headless")
    program.add_argument("file", help="the program: a .py file whose top level may await (see README, Programs)")
    program.add_argument("--model", help="the model its contexts use unless it selects one "
                                         "(a file in the models folder or a Hugging Face link; default: the demo model)")
    program.add_argument("--jsonl", action="store_true", help="one JSON line per event on stdout; the "
                                                              "program's own output on stderr")
    program.add_argument("--file", dest="files", action="append", default=[], metavar="PATH",
                         help="a file the program may read with read_file(name) (repeat; 5 MiB each, 50 MiB in all)")
    program.add_argument("--seed", type=int, help="initial seed: the samples' seeds follow from it in call order")
    program.add_argument("--time-limit", type=float, default=600.0, metavar="SECONDS",
                         help="stop the program after this long (default 600)")

    demo = commands.add_parser("demo-model", parents=[common], help="write the scripted demo GGUF")
    demo.add_argument("path", nargs="?", help="file or folder to write to (default: the models folder)")
    demo.add_argument("--keep-existing", action="store_true", help="leave an existing file as it is")

    info = commands.add_parser("info", parents=[common], help="print a GGUF file's metadata as JSON")
    info.add_argument("path", help="GGUF file (a bare name is looked up in the models folder)")

    chain = commands.add_parser("chain", parents=[common], help="run a chain headless")
    chain.add_argument("--model", action="append", required=True, metavar="PATH",
                       help="GGUF model (repeat for a chain; a bare name is looked up in the models folder)")
    chain.add_argument("--prompts", metavar="FILE", help="prompt list file ('-' reads standard input)")
    chain.add_argument("--system", metavar="TEXT", help="system prompt")
    chain.add_argument("--previous", metavar="TEXT", help="previous response (sent as the assistant's turn)")
    chain.add_argument("--responses", type=int, default=1, metavar="N", help="responses per model and item")
    chain.add_argument("--loops", type=int, default=1, metavar="N", help="times the whole chain repeats")
    chain.add_argument("--single-response", action="store_true", help="model i answers item i only, once")
    chain.add_argument("--shuffle", action="store_true", help="random model order, no model twice in a row")
    chain.add_argument("--feedback", action="store_true", help="each answer becomes the next previous response")
    chain.add_argument("--cumulative", action="store_true", help="with --feedback: append answers instead")
    chain.add_argument("--reset", action="store_true", help="clear the model's state before each answer")
    chain.add_argument("--random-params", action="store_true", help="draw sampling settings for each answer")
    chain.add_argument("--load-anyway", action="store_true",
                       help="load a model even when it needs more memory than is free (the system swaps)")
    chain.add_argument("--feed-reasoning", action="store_true",
                       help="feed an answer's reasoning (<think>...</think>) back to the next model too")
    chain.add_argument("--template", default="auto", metavar="FORMAT",
                       help="prompt format: auto (the model's template, or raw without one), model, raw "
                            "(plain text the model continues) or a llama.cpp template such as chatml, "
                            "llama3, gemma; an item's {template=...} wins")
    chain.add_argument("--seed", type=int, help="seed for shuffling, random settings and sampling")
    chain.add_argument("--set", action="append", metavar="KEY=VALUE",
                       help="a generation setting (temperature=0.7, stop=['\\n'], n_ctx=2048, ...)")
    code = chain.add_argument_group("running the code in answers (off unless --run-code)")
    code.add_argument("--run-code", action="store_true",
                      help="run each answer's ```python code in a Jupyter kernel from venvs/jupyter")
    code.add_argument("--stop-condition", action="store_true",
                      help="with --run-code: output that is not empty and not an error ends the run")
    code.add_argument("--feed-code-output", action="store_true",
                      help="with --run-code: what the code printed becomes the next previous response")
    code.add_argument("--code-timeout", type=float, default=60.0, metavar="S",
                      help="with --run-code: seconds each run may take (default 60)")
    code.add_argument("--hide-code-output", action="store_true",
                      help="with --run-code: leave outputs out of the readable transcript")
    code.add_argument("--offline-code", action="store_true",
                      help="with --run-code: the code gets no network (needs the bubblewrap sandbox)")
    code.add_argument("--keep-variables", action="store_true",
                      help="with --run-code: one kernel for the whole run instead of a fresh one per answer")
    chain.add_argument("--jsonl", action="store_true", help="one JSON object per line on stdout")
    chain.add_argument("--dry-run", action="store_true", help="print the plan; run nothing")
    remote = chain.add_argument_group("remote engines (a --model NAME/model-id runs on engine NAME)")
    remote.add_argument("--engine", action="append", metavar="NAME=URL",
                        help="an OpenAI-compatible engine for this run, URL up to and including /v1 "
                             "(saved engines are known without it: python -m app engines)")
    remote.add_argument("--engine-concurrency", type=int, metavar="N",
                        help="answers sent at once to each --engine engine (default: its saved value, else 1)")
    remote.add_argument("--engine-key-env", metavar="VAR",
                        help="environment variable holding the --engine engines' API key")

    engines = commands.add_parser("engines", parents=[common],
                                  help="remote OpenAI-compatible engines (llama-server, vLLM, Ollama, ...)")
    engine_actions = engines.add_subparsers(dest="engines_action", metavar="ACTION")
    engine_actions.add_parser("list", parents=[common], help="the saved engines as JSON lines (the default)")
    add = engine_actions.add_parser("add", parents=[common], help="save an engine (replaces one of that name)")
    add.add_argument("name", help="letters, digits, - and _: a Models line NAME/model-id uses it")
    add.add_argument("url", help="base URL up to and including /v1, e.g. http://127.0.0.1:8080/v1")
    add.add_argument("--key-env", metavar="VAR", help="read the API key from this environment variable")
    add.add_argument("--key-stdin", action="store_true",
                     help="read the API key from standard input (kept in the data folder, mode 0600)")
    add.add_argument("--concurrency", type=int, default=1, metavar="N", help="answers sent to it at once")
    add.add_argument("--idle-timeout", type=float, default=120.0, metavar="S",
                     help="seconds without a byte before a stream counts as cut (default 120)")
    add.add_argument("--kind", default="auto", help="auto, openai, llama.cpp, llama-cpp-python, vllm, ollama, "
                                                   "lm-studio or chain-studio: which sampling fields it takes")
    remove = engine_actions.add_parser("remove", parents=[common], help="forget a saved engine and its key")
    remove.add_argument("name")
    listed = engine_actions.add_parser("models", parents=[common], help="the models an engine lists")
    listed.add_argument("name")

    download = commands.add_parser("download", parents=[common], help="download GGUF models from Hugging Face")
    download.add_argument("links", nargs="+", metavar="LINK",
                          help="https://huggingface.co/ORG/REPO/resolve/REV/FILE.gguf or ORG/REPO:FILE.gguf")
    download.add_argument("--testing", action="store_true", help="keep only the last downloaded test model")

    library = commands.add_parser("library", parents=[common], help="list the entries of a prompt library file")
    library.add_argument("path", help="a library file (entries separated by a line $-$-$)")
    library.add_argument("--jsonl", action="store_true", help="one JSON object per line")

    runs = commands.add_parser("runs", parents=[common], help="past runs from the journal")
    runs.add_argument("action", nargs="?", choices=["show"], help="show one run")
    runs.add_argument("run_id", nargs="?", type=int, help="the run to show")
    runs.add_argument("--limit", type=int, default=50, help="how many runs to list")
    runs.add_argument("--jsonl", action="store_true", help="one JSON object per line")

    replay = commands.add_parser("replay", parents=[common],
                                 help="run a journaled run again with its seeds and settings, and compare")
    replay.add_argument("run_id", type=int, help="the run to replay (`runs` lists them)")
    replay.add_argument("--jsonl", action="store_true", help="one JSON object per line; the last is the verdict")
    replay.add_argument("--run-code", action="store_true",
                        help="run the code in answers again when the original did (off: the replay runs none)")

    diff = commands.add_parser("diff", parents=[common], help="compare two runs or two answers of the journal")
    diff.add_argument("a", metavar="A", help="a run id (12) or an answer (12:3, answer 3 of run 12)")
    diff.add_argument("b", metavar="B", help="the same kind as A")
    diff.add_argument("--jsonl", action="store_true", help="one JSON object per line")

    nxt = commands.add_parser("next-tokens", parents=[common],
                              help="several models' most likely next tokens at one prefix, side by side")
    nxt.add_argument("--model", action="append", required=True, metavar="PATH", help="a model (repeat for more)")
    where = nxt.add_mutually_exclusive_group(required=True)
    where.add_argument("--prompt", metavar="TEXT", help="a user prompt, sent in each model's own prompt format")
    where.add_argument("--text", metavar="TEXT", help="raw text, sent as is")
    where.add_argument("--answer", metavar="RUN:SEQ",
                       help="a journaled answer: its prompt as the model read it, and its text up to --position")
    nxt.add_argument("--position", type=int, default=0, metavar="N", help="with --answer: the answer's first N tokens")
    nxt.add_argument("--system", metavar="TEXT", default="", help="with --prompt: a system prompt")
    nxt.add_argument("--top", type=int, default=10, metavar="K", help="next tokens shown per model (1-100)")
    nxt.add_argument("--tokens", type=int, default=16, metavar="N", help="greedy continuation compared (1-256)")
    nxt.add_argument("--jsonl", action="store_true", help="one JSON object on stdout")

    journal = commands.add_parser("journal", parents=[common], help="a damaged journal's readable rows")
    journal_actions = journal.add_subparsers(dest="journal_action", metavar="ACTION", required=True)
    salvage = journal_actions.add_parser(
        "salvage", parents=[common], help="copy the readable rows of a damaged journal into the journal")
    salvage.add_argument("path", metavar="PATH",
                         help="a journal moved aside as journal.corrupt-<time> (or any journal file)")
    salvage.add_argument("--jsonl", action="store_true", help="one JSON object per line")

    say = commands.add_parser("say", parents=[common], help="speak a text into a WAV file")
    say.add_argument("text", metavar="TEXT", help="what to say ('-' reads standard input); code and markup are skipped")
    say.add_argument("--wav", required=True, metavar="PATH", help="the WAV file to write")
    say.add_argument("--voice", metavar="NAME", help="a voice name or id (see `voices`; default: the engine's)")
    say.add_argument("--rate", type=int, metavar="N", help="words per minute, 80-400 (default: the engine's)")

    commands.add_parser("voices", parents=[common], help="list the speech engine's voices as JSON lines")
    vosk_model = commands.add_parser("vosk-model", parents=[common],
                                     help="download a small Vosk model (sha256 pinned) for spoken commands")
    vosk_model.add_argument("language", metavar="LANGUAGE", help="en (English) or pt (Portuguese)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one sub-command and return its exit code."""
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):  # JSON lines and messages are UTF-8 on every platform
            stream.reconfigure(encoding="utf-8", errors="replace")
    try:
        return _dispatch(build_parser().parse_args(argv))
    except ChainStudioError as exc:
        # A domain error no sub-command caught (e.g. a read-only data folder): one message, no traceback.
        from app.cli import fail

        return fail(str(exc))
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): stop quietly, as command-line tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _dispatch(args: argparse.Namespace) -> int:
    from app import cli

    command = args.command or "ui"
    models_dir = getattr(args, "models_dir", None)
    if command == "demo-model":
        return cli.cmd_demo_model(args.path, models_dir, args.keep_existing)
    if command == "info":
        return cli.cmd_info(args.path, models_dir)
    if command in ("chain", "library", "runs", "download", "journal"):
        from app import cli_chain

        if command == "journal":
            return cli_chain.cmd_journal_salvage(args.path, args.jsonl)
        if command == "download":
            return cli_chain.cmd_download(args.links, models_dir, args.testing)
        if command == "chain":
            return cli_chain.cmd_chain(args)
        if command == "library":
            return cli_chain.cmd_library(args.path, args.jsonl)
        return cli_chain.cmd_runs(args.action, args.run_id, args.jsonl, args.limit)
    if command == "next-tokens":
        from app import cli_next_tokens

        return cli_next_tokens.cmd_next_tokens(args, models_dir)
    if command in ("replay", "diff"):
        from app import cli_replay

        if command == "replay":
            return cli_replay.cmd_replay(args.run_id, args.jsonl, args.run_code, models_dir)
        return cli_replay.cmd_diff(args.a, args.b, args.jsonl)
    if command == "serve":
        from app import cli_serve

        return cli_serve.cmd_serve(
            port=args.port, listen=args.listen,
            password=args.password or os.environ.get("CHAIN_STUDIO_PASSWORD"),
            models_dir=models_dir, allowed_hosts=args.allow_host, allowed_origins=args.allow_origin,
        )
    if command == "engines":
        from app import cli_engines

        return cli_engines.cmd_engines(args)
    if command == "program":
        from app import cli_program

        return cli_program.cmd_program(args.file, args.model, args.jsonl, args.files, args.seed,
                                       args.time_limit, models_dir)
    if command in ("say", "voices", "vosk-model"):
        from app import cli_voice

        if command == "vosk-model":
            return cli_voice.cmd_vosk_model(args.language)
        if command == "say":
            return cli_voice.cmd_say(args.text, args.wav, args.voice, args.rate)
        return cli_voice.cmd_voices()
    return cli.cmd_ui(
        port=getattr(args, "port", DEFAULT_PORT),
        listen=getattr(args, "listen", False),
        password=getattr(args, "password", None) or os.environ.get("CHAIN_STUDIO_PASSWORD"),
        open_browser=not getattr(args, "no_browser", False),
        models_dir=models_dir,
        allowed_hosts=getattr(args, "allow_host", []),
        allowed_origins=getattr(args, "allow_origin", []),
    )


if __name__ == "__main__":
    sys.exit(main())
