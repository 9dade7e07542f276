"""The missing-package action: which package a ModuleNotFoundError asks for, and the pip command."""

from __future__ import annotations

import pytest

from app.core.code_exec import ERROR, OK, CodeResult
from app.execution.packages import (
    check_package_name,
    install_package,
    missing_module,
    not_from_pip,
    package_for,
    pip_environment,
    pip_install_command,
    sandboxed_pip,
)
from app.execution.sandbox import sandbox_status
from app.installer import CONSTRAINTS, VENVS, venv_python


def failed(stderr: str) -> CodeResult:
    return CodeResult("import x", ERROR, stderr=stderr)


@pytest.mark.parametrize("module, package", [
    ("sklearn", "scikit-learn"), ("cv2", "opencv-python"), ("PIL", "pillow"), ("yaml", "pyyaml"),
    ("bs4", "beautifulsoup4"), ("skimage", "scikit-image"), ("dateutil", "python-dateutil"), ("fitz", "pymupdf"),
    ("docx", "python-docx"), ("Crypto", "pycryptodome"), ("dtale", "dtale"), ("sweetviz", "sweetviz"),
    ("polars", "polars"), ("google.protobuf", "protobuf"),
])
def test_import_names_map_to_registry_names(module: str, package: str) -> None:
    assert package_for(module) == package


def test_the_missing_module_is_read_from_the_traceback() -> None:
    traceback = ("---------------------------------------------------------------------------\n"
                 "ModuleNotFoundError                       Traceback (most recent call last)\n"
                 "Cell In[1], line 1\n----> 1 import cv2\n\nModuleNotFoundError: No module named 'cv2'\n")
    assert missing_module(failed(traceback)) == "cv2"
    assert package_for(missing_module(failed(traceback)) or "") == "opencv-python"
    # the last one counts (the error that ended the run)
    assert missing_module(failed("ModuleNotFoundError: No module named 'a'\n"
                                 "ModuleNotFoundError: No module named 'sklearn'\n")) == "sklearn"


def test_no_offer_without_a_missing_package() -> None:
    assert missing_module(CodeResult("x", OK, stdout="ModuleNotFoundError: No module named 'cv2'")) is None
    assert missing_module(failed("ZeroDivisionError: division by zero")) is None
    # a submodule missing from an installed package: installing the package would change nothing
    assert missing_module(failed("ModuleNotFoundError: No module named 'sklearn.nothing'")) is None
    assert not_from_pip("tkinter") is not None and "python3-tk" in (not_from_pip("tkinter") or "")
    assert not_from_pip("cv2") is None


def test_the_pip_command_line() -> None:
    command = pip_install_command("opencv-python")
    assert command[:4] == [str(venv_python("jupyter")), "-m", "pip", "install"]
    assert command[-1] == "opencv-python"
    assert command[command.index("-c") + 1] == str(CONSTRAINTS)  # tested versions stay as they are
    assert "--prefer-binary" in command and "--no-input" in command


@pytest.mark.parametrize("name", ["--index-url=http://evil", "-r", "../x", "a b", "pkg;rm", "", "https://x/y.whl"])
def test_only_plain_package_names_reach_pip(name: str) -> None:
    with pytest.raises(ValueError):
        check_package_name(name)
    with pytest.raises(ValueError):
        pip_install_command(name)


def test_pip_gets_the_registry_settings_but_not_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIP_INDEX_URL", "https://registry.example/simple")
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    env = pip_environment()
    assert env["PIP_INDEX_URL"] == "https://registry.example/simple"
    assert "HF_TOKEN" not in env
    assert env["VIRTUAL_ENV"] == str(VENVS / "jupyter")


def test_pip_runs_in_the_sandbox_with_only_the_environment_writable() -> None:
    command = sandboxed_pip(pip_install_command("six"))
    if not sandbox_status().available:
        assert command == pip_install_command("six")
        return
    assert command[0].endswith("bwrap")
    binds = [tuple(command[i:i + 3]) for i, arg in enumerate(command) if arg == "--bind"]
    assert binds == [("--bind", str(VENVS / "jupyter"), str(VENVS / "jupyter"))]
    assert ("--ro-bind", str(CONSTRAINTS), str(CONSTRAINTS)) in \
        [tuple(command[i:i + 3]) for i, arg in enumerate(command) if arg == "--ro-bind"]


def test_pip_really_runs_for_a_package_already_there() -> None:
    """The whole action without the network: pip (in the sandbox) finds six already installed."""
    seen: list[str] = []
    result = install_package("six", on_output=seen.append)
    assert result.status == OK, result
    assert "Requirement already satisfied: six" in result.stdout
    assert seen and seen[-1] == result.stdout
    assert result.code.startswith("pip install ") and result.code.endswith(" six")
