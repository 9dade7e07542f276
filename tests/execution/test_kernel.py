"""The code kernel for real: the right interpreter, a clean environment, limits, rich outputs."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.core.code_exec import APP, DIED, ERROR, OK, STOPPED, TIMEOUT
from app.execution.kernel import CodeKernel, ensure_kernelspec, kernels_dir
from app.execution.pool import KernelPool
from app.execution.processes import pid_alive
from app.installer import venv_python
from tests.execution.conftest import host_pids


@pytest.fixture
def kernel(tmp_path: Path):
    started = CodeKernel(tmp_path).start()
    yield started
    started.shutdown()


def test_the_kernel_runs_in_the_code_environment_not_the_studios(kernel: CodeKernel) -> None:
    executable = kernel.interpreter()
    assert Path(executable) == venv_python("jupyter")
    assert Path(executable).resolve() != Path(sys.executable).resolve() or executable != sys.executable
    assert "venvs/jupyter" in Path(executable).as_posix()
    spec = (ensure_kernelspec() / "kernel.json").read_text()
    assert str(venv_python("jupyter")) in spec and str(kernels_dir()) in str(ensure_kernelspec())


def test_environment_working_folder_and_no_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_secret_value")
    monkeypatch.setenv("MY_API_KEY", "also-secret")
    kernel = CodeKernel(tmp_path).start()
    try:
        result = kernel.run(
            "import os, json\n"
            "print(json.dumps({'cwd': os.getcwd(), 'mpl': os.environ.get('MPLBACKEND'),"
            " 'secrets': [k for k, v in os.environ.items() if v in ('hf_secret_value', 'also-secret')],"
            " 'venv': os.environ.get('VIRTUAL_ENV')}))",
            timeout=30,
        )
    finally:
        kernel.shutdown()
    assert result.status == OK, result
    seen = json.loads(result.stdout)
    assert seen["cwd"] == str(tmp_path)
    assert seen["mpl"] == "Agg"
    assert seen["secrets"] == []
    assert seen["venv"].endswith("jupyter")


def test_an_endless_loop_times_out_and_the_next_run_works(kernel: CodeKernel) -> None:
    result = kernel.run("while True:\n    pass", timeout=2)
    assert result.status == TIMEOUT
    assert result.message == "timed out after 2 s"
    assert result.seconds >= 2
    assert kernel.alive  # the interrupt was enough: variables survive
    after = kernel.run("print('next run')", timeout=30)
    assert (after.status, after.stdout) == (OK, "next run\n")


def test_code_that_ignores_interrupts_gets_a_new_kernel(pool: KernelPool) -> None:
    code = "import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    time.sleep(0.01)"
    result = pool.run(code, timeout=2)
    assert result.status == TIMEOUT
    assert result.message.startswith("timed out after 2 s")
    assert "restarted" in result.message
    after = pool.run("print(6 * 7)", timeout=60)
    assert (after.status, after.stdout) == (OK, "42\n")


def test_a_dying_kernel_is_reported_and_replaced(pool: KernelPool) -> None:
    result = pool.run("import os\nos._exit(1)", timeout=60)
    assert result.status == DIED
    assert "exit code 1" in result.message and "fresh one" in result.message
    after = pool.run("print('alive again')", timeout=60)
    assert (after.status, after.stdout) == (OK, "alive again\n")


def test_input_fails_at_once_instead_of_waiting(kernel: CodeKernel) -> None:
    result = kernel.run("name = input('Your name: ')\nprint(name)", timeout=120)
    assert result.status == ERROR  # not TIMEOUT: nothing waited for a keyboard
    assert "input() is not available" in result.message
    assert "StdinNotImplementedError" in result.stderr


def test_errors_come_back_as_tracebacks(kernel: CodeKernel) -> None:
    result = kernel.run("print('before')\n1 / 0", timeout=30)
    assert result.status == ERROR
    assert result.stdout == "before\n"
    assert "ZeroDivisionError: division by zero" in result.stderr
    assert "\x1b[" not in result.stderr  # colour codes are removed


def test_huge_output_keeps_head_and_tail_with_a_note(kernel: CodeKernel) -> None:
    result = kernel.run("print('A' * 10**6 + 'B' * 10**6 + 'Z' * 1000)", timeout=60)
    assert result.status == OK
    assert result.truncated
    assert result.stdout.startswith("A" * 400_000)
    assert result.stdout.rstrip("\n").endswith("B" * 98_000 + "Z" * 1000)
    assert "characters not shown" in result.stdout
    assert len(result.stdout) < 520_000


def test_huge_output_costs_the_studio_little_memory(tmp_path: Path) -> None:
    """print('x' * 10**8) in a process like the studio's: peak memory against a tiny print."""
    probe = (
        "import resource, sys\n"
        "from pathlib import Path\n"
        "from app.execution.kernel import CodeKernel\n"
        "kernel = CodeKernel(Path(sys.argv[2])).start()\n"
        "kernel.run('print(1)', timeout=60)\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "result = kernel.run(sys.argv[1], timeout=120)\n"
        "after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "kernel.shutdown()\n"
        "print(result.status, result.truncated, len(result.stdout), (after - before) // 1024)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    out = subprocess.run([sys.executable, "-c", probe, "print('x' * 10**8)", str(tmp_path)], env=env,
                         capture_output=True, text=True, timeout=300, check=True).stdout.split()
    status, truncated, kept, grown_mib = out[0], out[1], int(out[2]), int(out[3])
    assert (status, truncated) == ("ok", "True")
    assert kept < 1_100_000
    assert grown_mib < 200


def test_matplotlib_figures_come_back_as_png_images(kernel: CodeKernel) -> None:
    result = kernel.run("import matplotlib.pyplot as plt\nplt.plot([1, 4, 9])\nplt.title('squares')\nplt.show()",
                        timeout=120)
    assert result.status == OK, result.stderr
    images = [o for o in result.outputs if o.mime == "image/png"]
    assert len(images) == 1
    assert base64.b64decode(images[0].data)[:8] == b"\x89PNG\r\n\x1a\n"
    assert result.stderr == ""  # plt.show() neither blocks nor warns


def test_pandas_tables_come_back_as_html(kernel: CodeKernel) -> None:
    result = kernel.run("import pandas as pd\npd.DataFrame({'a': [1, 2], 'b': [3, 4]})", timeout=120)
    assert result.status == OK
    html = [o.data for o in result.outputs if o.mime == "text/html"]
    assert len(html) == 1 and "<table" in html[0] and "<td>4</td>" in html[0]


def test_huge_allocations_hit_the_memory_limit_not_the_machine(kernel: CodeKernel) -> None:
    result = kernel.run("block = bytearray(10**15)", timeout=60)
    assert result.status == ERROR
    assert "MemoryError" in result.stderr
    assert kernel.alive


def test_fresh_kernel_per_run_forgets_and_persistent_keeps(pool: KernelPool) -> None:
    assert pool.run("x = 41", timeout=60).status == OK
    forgot = pool.run("print(x + 1)", timeout=60)
    assert forgot.status == ERROR and "NameError" in forgot.stderr
    assert pool.run("y = 41", timeout=60, persistent=True).status == OK
    kept = pool.run("print(y + 1)", timeout=60, persistent=True)
    assert (kept.status, kept.stdout) == (OK, "42\n")


def test_close_python_kills_the_kernel_and_every_process_it_started(pool: KernelPool) -> None:
    code = (
        "import subprocess\n"
        "a = subprocess.Popen(['sleep', '600'])\n"
        "b = subprocess.Popen(['sleep', '600'], start_new_session=True)\n"
        "print(a.pid, b.pid)"
    )
    result = pool.run(code, timeout=60, persistent=True)
    assert result.status == OK
    kernel = pool._current
    assert kernel is not None and kernel.pid is not None
    pids = host_pids([int(p) for p in result.stdout.split()], kernel.pid)
    assert len(pids) == 2 and all(pid_alive(pid) for pid in pids)
    assert pool.close_python() >= 1
    assert not any(pid_alive(pid) for pid in pids)
    after = pool.run("print('fresh')", timeout=60)
    assert after.stdout == "fresh\n"


def test_stop_ends_a_run_in_progress(kernel: CodeKernel) -> None:
    import time

    asked = time.monotonic() + 1.0
    result = kernel.run("import time\ntime.sleep(600)", timeout=600, should_stop=lambda: time.monotonic() > asked)
    assert result.status == STOPPED
    assert kernel.alive


def test_web_apps_run_in_the_background_with_their_address(pool: KernelPool) -> None:
    import urllib.error
    import urllib.request

    code = (
        "from http.server import HTTPServer, SimpleHTTPRequestHandler\n"
        "server = HTTPServer(('127.0.0.1', 0), SimpleHTTPRequestHandler)\n"
        "print(f'Serving on http://127.0.0.1:{server.server_port}/', flush=True)\n"
        "server.serve_forever()"
    )
    result = pool.run(code, timeout=60)
    assert result.status == APP
    assert result.app_url and result.app_url.startswith("http://127.0.0.1:")
    assert result.stdout.startswith(f"web server running at {result.app_url}")
    assert urllib.request.urlopen(result.app_url, timeout=10).status == 200
    assert [app.url for app in pool.running_apps()] == [result.app_url]
    pool.close_python()
    assert pool.running_apps() == []
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(result.app_url, timeout=5)
