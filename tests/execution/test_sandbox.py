"""Generated code in the bubblewrap sandbox: each attack an adversarial pass tried, run for real
in a kernel from venvs/jupyter. On Linux CI bubblewrap is installed by ./install.sh, so these run."""

from __future__ import annotations

import json
import os
import socket
import uuid
from pathlib import Path
from typing import Iterator

import psutil
import pytest

from app import settings
from app.core.code_exec import OK
from app.execution.pool import KernelPool
from app.execution.sandbox import code_environment, sandbox_status

SECRETS = {
    "AWS_ACCESS_KEY_ID": "AKIAEXAMPLESECRET1",
    "MY_KEY": "my-key-secret-2",
    "DATABASE_URL": "postgres://admin:db-password-3@db/prod",
    "MYSQL_PWD": "mysql-secret-4",
    "GITHUB_PAT": "ghp_secret5",
    "SSH_AUTH_SOCK": "/tmp/ssh-agent-secret6/agent.1",
    "HF_TOKEN": "hf_secret7",
    "CHAIN_STUDIO_PASSWORD": "page-password-8",
}

pytestmark = pytest.mark.skipif(not sandbox_status().available and not os.environ.get("CI"),
                                reason="bubblewrap is not available here (./install.sh installs it as root)")


def test_the_sandbox_is_available_on_linux_ci() -> None:
    """CI runs as root on Debian, where ./install.sh installs bubblewrap: the tests below must run."""
    assert sandbox_status().available, sandbox_status().message


@pytest.fixture
def sandboxed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[KernelPool]:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    pool = KernelPool(workdir=settings.code_dir(), preload=())
    yield pool
    pool.close()


def run(pool: KernelPool, code: str, offline: bool = False, persistent: bool = False) -> str:
    result = pool.run(code, timeout=60, offline=offline, persistent=persistent)
    assert result.status == OK, result.stderr + result.message
    return result.stdout


def test_no_secret_reaches_the_code_not_even_through_proc(sandboxed: KernelPool) -> None:
    out = run(sandboxed, f"""
import os, glob
seen = dict(os.environ)
for path in glob.glob('/proc/*/environ') + glob.glob('/proc/*/cmdline'):
    try:
        seen[path] = open(path, 'rb').read().decode('utf-8', 'replace')
    except OSError:
        pass
try:
    open('/proc/{os.getpid()}/environ').read()
    seen['studio'] = 'readable'
except OSError:
    pass
print(repr(seen))
""")
    for name, value in SECRETS.items():
        assert value not in out, name
    assert "'studio': 'readable'" not in out
    allowed = code_environment()
    assert not set(SECRETS) & set(allowed)


def test_the_code_cannot_see_or_signal_the_studio(sandboxed: KernelPool) -> None:
    out = run(sandboxed, f"""
import os
try:
    os.kill({os.getpid()}, 0)
    print('studio visible')
except ProcessLookupError:
    print('studio not visible')
try:
    os.kill(os.getppid(), 9)
except OSError as exc:
    print('kill failed', exc)
print('parent', os.getppid())
""")
    assert "studio not visible" in out
    assert psutil.pid_exists(os.getpid())  # the studio (this process) is alive
    assert run(sandboxed, "print(6 * 7)").strip() == "42"  # and the code runner still works


def test_the_data_folder_home_and_models_are_not_visible(sandboxed: KernelPool, tmp_path: Path) -> None:
    journal = settings.data_dir() / "journal.sqlite3"
    journal.write_bytes(b"SQLite format 3\0 journal")
    model = settings.models_dir() / "secret-model.gguf"
    model.write_bytes(b"GGUF")
    ssh = Path.home() / ".ssh"
    out = run(sandboxed, f"""
import os
for path in {[str(journal), str(model), str(ssh), str(settings.logs_dir())]!r}:
    print(path, os.path.exists(path))
try:
    open({str(journal)!r}, 'w').write('overwritten')
    print('journal written')
except OSError as exc:
    print('journal not writable:', type(exc).__name__)
""")
    assert f"{journal} False" in out and f"{model} False" in out and f"{ssh} False" in out
    assert journal.read_bytes() == b"SQLite format 3\0 journal"


def test_only_the_code_folder_is_writable_and_tmp_is_private(sandboxed: KernelPool) -> None:
    marker = f"cs-sandbox-{uuid.uuid4().hex}"
    out = run(sandboxed, f"""
import os
for path in ('/usr/lib/{marker}', '/etc/{marker}', '{settings.PROJECT_ROOT}/{marker}'):
    try:
        open(path, 'w').write('x')
        print('wrote', path)
    except OSError as exc:
        print('refused', path, type(exc).__name__)
open('made-here.txt', 'w').write('kept')
open('/tmp/{marker}', 'w').write('private')
print(os.getcwd())
""")
    assert "wrote" not in out
    assert not (settings.PROJECT_ROOT / marker).exists()
    assert (settings.code_dir() / "made-here.txt").read_text() == "kept"
    assert not Path(f"/tmp/{marker}").exists()


def test_a_daemon_does_not_survive_close_python(sandboxed: KernelPool) -> None:
    mark = uuid.uuid4().hex
    run(sandboxed, f"""
import os, sys, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execve(sys.executable, [sys.executable, '-c', 'import time\\nwhile True: time.sleep(0.2)'],
                  dict(os.environ, CS_DAEMON_MARK={mark!r}))
    os._exit(0)
time.sleep(1)
print('started')
""", persistent=True)
    assert _marked(mark), "the daemon should be running before Close Python"
    sandboxed.close_python()
    assert not _marked(mark)


def _marked(mark: str) -> list[int]:
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get("CS_DAEMON_MARK") == mark and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc.pid)
        except (psutil.Error, OSError):
            continue
    return found


def test_offline_code_has_no_network_and_online_code_has(sandboxed: KernelPool) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(4)
        port = server.getsockname()[1]
        probe = f"""
import socket
try:
    socket.create_connection(('127.0.0.1', {port}), timeout=5).close()
    print('connected')
except OSError as exc:
    print('no network:', type(exc).__name__)
"""
        assert "connected" in run(sandboxed, probe)
        offline = run(sandboxed, probe, offline=True)
    assert "no network" in offline
    assert json.loads(run(sandboxed, "import json; print(json.dumps(6 * 7))", offline=True)) == 42


NORMAL_USER = "chainstudio-test"
USER_CHECK = r'''
import json, os, subprocess, sys
from pathlib import Path
from app import settings
from app.execution.sandbox import sandbox_command, sandbox_status

probe = """
import json, os
found = {'parent_visible': True, 'journal': os.path.exists(os.environ['JOURNAL']),
         'secret': os.path.exists(os.environ['SECRET']), 'caps': open('/proc/self/status').read().split('CapEff:')[1].split()[0]}
try:
    os.kill(int(os.environ['STUDIO_PID']), 0)
except ProcessLookupError:
    found['parent_visible'] = False
open('written.txt', 'w').write('ok')
try:
    open('/usr/cs-test', 'w')
    found['usr_writable'] = True
except OSError:
    found['usr_writable'] = False
print(json.dumps(found))
"""
journal = settings.data_dir() / "journal.sqlite3"
journal.write_text("journal")
secret = Path.home() / ".ssh" / "id_test"
secret.parent.mkdir(parents=True, exist_ok=True)
secret.write_text("key")
env = dict(os.environ, JOURNAL=str(journal), SECRET=str(secret), STUDIO_PID=str(os.getpid()))
command = sandbox_command([sys.executable, "-c", probe], writable=[settings.code_dir()], workdir=settings.code_dir())
done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
print(json.dumps({"available": sandbox_status().available, "code": done.returncode, "out": done.stdout,
                  "err": done.stderr, "written": (settings.code_dir() / "written.txt").exists()}))
'''


def test_the_sandbox_works_for_a_normal_user(tmp_path: Path) -> None:
    """bubblewrap without root uses a user namespace: the same checks hold for an ordinary account
    (created here when the suite runs as root; run with Debian's own python3, which needs none of
    the studio's packages for this)."""
    import shutil
    import subprocess
    import tempfile

    system_python = shutil.which("python3", path="/usr/bin:/bin")
    if os.geteuid() != 0 or shutil.which("useradd") is None or system_python is None:
        pytest.skip("needs root (to create an ordinary user), useradd and /usr/bin/python3")
    if subprocess.run(["id", NORMAL_USER], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", NORMAL_USER], check=True)
    home = Path(tempfile.mkdtemp(prefix="cs-user-"))  # pytest's own folders are private to root
    try:
        shutil.chown(home, NORMAL_USER)
        done = subprocess.run(
            ["runuser", "-u", NORMAL_USER, "--", "env", "-i", f"HOME={home / 'home'}",
             f"CHAIN_STUDIO_HOME={home / 'data'}", f"PYTHONPATH={settings.PROJECT_ROOT}", "PATH=/usr/bin:/bin",
             system_python, "-c", USER_CHECK],
            capture_output=True, text=True, timeout=120, cwd="/",
        )
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout.strip().splitlines()[-1])
        assert report["available"] and report["code"] == 0, report
        seen = json.loads(report["out"])
        assert seen == {"parent_visible": False, "journal": False, "secret": False, "caps": "0000000000000000",
                        "usr_writable": False}
        assert report["written"]
    finally:
        shutil.rmtree(home, ignore_errors=True)
