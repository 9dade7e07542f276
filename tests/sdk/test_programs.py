"""Every SDK function and each documented sampling semantic, through a real program process on the
demo model (its script: a prompt ending in anything but the special characters answers
"Hello from the demo model.", with " again", " inside", " tiny"… as the second choices)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

from tests.api.conftest import RunningApi
from tests.sdk.conftest import run_program


def printed_json(outcome) -> list:
    return [json.loads(line) for line in outcome.printed if line.startswith(("{", "["))]


def test_prompt_and_sample_give_tokens_with_probabilities_and_alternatives(api: RunningApi) -> None:
    outcome = run_program(api, """
        import json
        await prompt("hi")
        result = await sample(max_len=20, temperature=1.0, nucleus_p=0.98, rng_seed=3)
        context = get_context()
        print(json.dumps({"text": result.text, "stop": result.stop_reason, "seed": result.seed,
                          "tokens": [[t.token_str, t.token_id, t.prob, [(a.token_str, a.prob) for a in t.top_k]]
                                     for t in result.tokens],
                          "context": context.as_string(),
                          "prompted": [[t.token_str, t.prob] for t in context.tokens if not t.sampled]}))
    """)
    assert outcome.exit["reason"] == "finished", outcome.output
    (data,) = printed_json(outcome)
    assert data["stop"] == "eos" and data["seed"] == 3
    assert data["context"] == "hi" + data["text"]
    assert data["prompted"] == [["<s>", None], ["h", None], ["i", None]]  # BOS once, at the context's start
    words = [token for token, *_ in data["tokens"]]
    assert "".join(words) == data["text"] and words[0] in ("Hello", "Greetings")
    for token_str, _id, prob, alternatives in data["tokens"]:
        assert 0 < prob <= 1
        assert token_str in [alt for alt, _ in alternatives]  # the drawn token is among those after top-P
        probs = [p for _, p in alternatives]
        assert probs == sorted(probs, reverse=True) and abs(sum(probs) - 1) < 1e-6
    # the same events reached the studio, as the page's token view draws them
    assert [e["token_str"] for e in outcome.of("token")] == words
    assert outcome.of("prompt")[0]["tokens"] == [[1, "<s>"], [107, "h"], [108, "i"]]


def test_nucleus_p_leaves_only_the_top_p_alternatives(api: RunningApi) -> None:
    outcome = run_program(api, """
        await prompt("hi")
        narrow = await sample(max_len=1, nucleus_p=0.5, rng_seed=1)
        clear_prompt()
        await prompt("hi")
        wide = await sample(max_len=1, nucleus_p=0.98, rng_seed=1)
        print([a.token_str for a in narrow.tokens[0].top_k], [a.token_str for a in wide.tokens[0].top_k])
    """)
    assert outcome.printed == ["['Hello'] ['Hello', 'Greetings']"]


def test_a_stop_token_is_left_out_and_a_string_that_is_not_one_token_is_ignored(api: RunningApi) -> None:
    outcome = run_program(api, """
        await prompt("hi")
        a = await sample(temperature=0, stop_tokens=[" demo", "not one token"], add_to_context=False)
        b = await sample(temperature=0, stop_tokens=["demo"], add_to_context=False)  # augmented: " demo"
        c = await sample(temperature=0, stop_tokens=["demo"], augment_tokens=False, add_to_context=False)
        print(repr(a.text), a.stop_reason, repr(b.text), repr(c.text), c.stop_reason)
    """)
    assert outcome.printed == ["'Hello from the' stop_token 'Hello from the' 'Hello from the demo model.' eos"]


def test_a_stop_string_is_included_and_the_answer_may_run_past_it(api: RunningApi) -> None:
    outcome = run_program(api, """
        await prompt("hi")
        r = await sample(temperature=0, stop_strings=["mod"])
        print(repr(r.text), r.stop_reason)
    """)
    assert outcome.printed == ["'Hello from the demo model.' stop_string"]


def test_allowed_and_disallowed_tokens_limit_the_draw(api: RunningApi) -> None:
    outcome = run_program(api, """
        await prompt("hi")
        a = await sample(max_len=2, temperature=0, allowed_tokens=["Greetings", "again"], add_to_context=False)
        b = await sample(max_len=1, temperature=0, disallowed_tokens=["Hello"], add_to_context=False)
        c = await sample(max_len=1, temperature=0, allowed_tokens=[259, 99999], add_to_context=False)
        print(repr(a.text), repr(b.text), repr(c.text))
        try:
            await sample(allowed_tokens=["Hello"], disallowed_tokens=["Greetings"])
        except ValueError as error:
            print("refused:", error)
    """)
    # " again" is allowed through augmentation; id 99999 is not in the vocabulary and is ignored
    assert outcome.printed == ["'Greetings again' 'Greetings' 'Hello'",
                               "refused: only one of allowed_tokens and disallowed_tokens may be set"]


def test_a_seed_repeats_a_sample_and_the_programs_seed_repeats_the_whole_run(api: RunningApi) -> None:
    source = """
        texts = []
        for _ in range(4):
            clear_prompt()
            await prompt("hi")
            texts.append((await sample(max_len=6, temperature=3.0, nucleus_p=1.0)).text)
        clear_prompt()
        await prompt("hi")
        fixed = [(await sample(max_len=6, temperature=3.0, nucleus_p=1.0, rng_seed=9, add_to_context=False)).text
                 for _ in range(2)]
        print(texts, fixed[0] == fixed[1])
    """
    first = run_program(api, source, seed=1234)
    again = run_program(api, source, seed=1234)
    assert first.printed == again.printed and first.printed[0].endswith("True")
    assert len(set(ast.literal_eval(first.printed[0].rsplit(" ", 1)[0]))) > 1  # the seeds differ from call to call


def test_prompt_fn_runs_in_a_fresh_context_nests_and_returns_to_its_caller(api: RunningApi) -> None:
    outcome = run_program(api, """
        @prompt_fn
        async def inner():
            await prompt("^")
            return get_context().name, len(get_context().tokens)

        @prompt_fn
        async def outer(word):
            await prompt(word)
            answer = await sample(temperature=0, max_len=3)
            nested = await inner()
            return answer.text, nested, get_context().as_string()

        await prompt("hi")
        result = await outer("x")
        print(result, repr(get_context().as_string()))
    """)
    assert outcome.printed == ["('Hello from the', ('inner', 2), 'xHello from the') 'hi'"]
    contexts = outcome.of("context")
    assert [(c["name"], c["parent"]) for c in contexts] == [("main", None), ("outer", 1), ("inner", 2)]


def test_gather_runs_prompt_fns_concurrently_each_in_its_own_context(api: RunningApi) -> None:
    outcome = run_program(api, """
        import asyncio

        batches = []

        @prompt_fn
        async def ask(ending):
            await prompt("question" + ending)
            result = await sample(temperature=0, max_len=40)
            batches.append(result.extra["batch"])
            return result.text

        print(await asyncio.gather(ask("^"), ask("?"), ask("%")))
        print(batches)
    """)
    assert outcome.printed == ["['Roses are red\\nViolets are blue\\nThe end.', 'Hello from the demo model.', "
                               "'```python\\nprint(6 * 7)\\n```']", "[3, 3, 3]"]  # decoded together in one batch
    assert len({e["context"] for e in outcome.of("token")}) == 3


def test_clear_prompt_empties_the_context_and_add_to_context_false_leaves_it(api: RunningApi) -> None:
    outcome = run_program(api, """
        await prompt("hi")
        await sample(temperature=0, max_len=2, add_to_context=False)
        before = get_context().as_string()
        clear_prompt()
        after = len(get_context().tokens)
        await prompt("^")
        print(repr(before), after, [t.token_str for t in get_context().tokens])
    """)
    assert outcome.printed == ["'hi' 0 ['<s>', '^']"]
    assert outcome.of("clear") == [{"type": "clear", "context": 1}]


def test_user_input_set_title_and_read_file(api: RunningApi, tmp_path: Path) -> None:
    data = tmp_path / "rows.csv"
    data.write_text("name,score\nada,3\n", encoding="utf-8")
    outcome = run_program(api, """
        set_title("A small survey")
        first = await user_input("Your name?")
        second = await user_input("Your city?")
        print(first, second, read_file("rows.csv").decode().splitlines()[1])
        try:
            read_file("../secrets.txt")
        except FileNotFoundError as error:
            print(error)
        try:
            await user_input("Anything else?")
        except NoUserInput as error:
            print(error)
    """, answers=["Ada", "Lisbon"], files=[data])
    assert outcome.printed == [
        "Ada Lisbon ada,3",
        "read_file('../secrets.txt'): give the name of a file given to the program, without a folder",
        "user_input('Anything else?'): the test has no more answers",
    ]
    assert outcome.of("title") == [{"type": "title", "title": "A small survey"}]
    assert [e["label"] for e in outcome.of("user_input")] == ["Your name?", "Your city?", "Anything else?"]


def test_select_model_names_a_model_and_an_unknown_one_is_a_clear_error(api: RunningApi) -> None:
    outcome = run_program(api, """
        select_model("chain-studio-demo")
        await prompt("hi")
        print((await sample(temperature=0, max_len=1)).text)
        select_model("no-such-model")
        await prompt("hi")
    """, model=None)
    assert outcome.printed[0] == "Hello"
    (error,) = outcome.of("error")
    assert error["line"] == 5 and "no model named 'no-such-model' in the models folder" in error["message"]
    assert outcome.exit["reason"] == "failed"
    assert "File" in outcome.output and "app/sdk" not in outcome.output  # only the program's own frames


def test_the_sampler_sdk_example_runs_with_only_its_import_line_changed(api: RunningApi) -> None:
    outcome = run_program(api, '''
        """A simple example demonstrating text completion."""
        import asyncio
        from app import sdk as xai_sdk
        async def main():
            """Runs the example."""
            client = xai_sdk.Client()
            prompt = "The answer to life and the universe is"
            print(prompt, end="")
            async for token in client.sampler.sample(prompt="", inputs=(prompt,), max_len=3):
                print(token.token_str, end="")
            print("")
        asyncio.run(main())
    ''')
    assert outcome.exit["reason"] == "finished", outcome.output
    line = outcome.printed[0]
    assert line.startswith("The answer to life and the universe is") and len(line) > len(
        "The answer to life and the universe is")


def test_the_sampler_shape_derives_seeds_in_call_order_tokenizes_and_refuses_images(api: RunningApi) -> None:
    outcome = run_program(api, """
        from app.sdk import Client

        async def texts(seed):
            client = Client(initial_rng_seed=seed)
            found = []
            for _ in range(3):
                found.append("".join([t.token_str async for t in client.sampler.sample(
                    prompt="hi", max_len=5, temperature=3.0, nucleus_p=1.0)]))
            return found

        print(await texts(7) == await texts(7))
        print([t.token_str for t in await Client().sampler.tokenize("hi")])
        try:
            [t async for t in Client().sampler.sample(prompt="", inputs=("look", b"\\x89PNG..."))]
        except SdkError as error:
            print(error)
    """)
    assert outcome.printed == ["True", "['<s>', 'h', 'i']",
                               "inputs[1] is an image, and chain-studio-demo.gguf cannot see images: the studio "
                               "runs text models (give text or token ids)"]


def test_return_attention_gives_each_token_its_attention_over_the_context(api: RunningApi) -> None:
    outcome = run_program(api, """
        await prompt("hi")
        r = await sample(max_len=2, return_attention=True, temperature=0)
        print([[round(w, 4) for w in t.attention] for t in r.tokens], repr(r.attention_note))
        plain = await sample(max_len=1, temperature=0)
        print(plain.tokens[0].attention)
    """)
    # The demo model's attention weights are zero: every position weighs the same (its real
    # attention, read from llama.cpp; tests/models/test_attention.py checks a model with real weights).
    # BOS, "h", "i" before the first token; one more before the second.
    assert outcome.printed == ["[[0.3333, 0.3333, 0.3333], [0.25, 0.25, 0.25, 0.25]] ''", "None"]
    assert [len(e["attention"]) for e in outcome.of("token")[:2]] == [3, 4]


def test_stop_ends_the_program_and_its_generation(api: RunningApi) -> None:
    outcome = run_program(api, """
        await prompt("~")
        await sample(max_len=100000, temperature=0)
    """, stop_after="token")
    assert outcome.exit["reason"] == "stopped"
    assert len(outcome.of("token")) < 1000
    # the studio is free again at once: the endless answer ended with its connection
    status, answer = api.call("POST", "/api/tokenize", {"model": "chain-studio-demo.gguf", "text": "ok"})
    assert status == 200 and answer["tokens"]


def test_the_time_limit_stops_a_program(api: RunningApi) -> None:
    outcome = run_program(api, """
        import time
        while True:
            time.sleep(0.05)
    """, time_limit=1.0)
    assert outcome.exit["reason"] == "time_limit"


def test_sample_takes_a_constraint_and_its_tokens_show_the_constraint_stage(api: RunningApi) -> None:
    outcome = run_program(api, """
        import json
        await prompt("hi")
        answer = await sample(max_len=10, temperature=1.0, rng_seed=2, choices=["yes", "no"])
        clear_prompt()
        await prompt("hi")
        digits = await sample(max_len=10, temperature=1.0, rng_seed=2, regex="[0-9]{4}")
        from app.sdk import Client
        schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
        shaped = "".join([t.token_str async for t in Client(initial_rng_seed=1).sampler.sample(
            prompt="hi", max_len=40, temperature=1.0, json_schema=schema)])
        print(json.dumps({"answer": answer.text, "digits": digits.text, "shaped": shaped,
                          "alternatives": [a.token_str for a in answer.tokens[0].top_k]}))
    """)
    assert outcome.exit["reason"] == "finished", outcome.output
    (data,) = printed_json(outcome)
    assert data["answer"] in ("yes", "no") and len(data["digits"]) == 4 and data["digits"].isdigit()
    assert sorted(data["alternatives"]) == ["n", "y"]
    assert json.loads(data["shaped"]) in ({"ok": True}, {"ok": False})  # the Sampler SDK shape takes one too
