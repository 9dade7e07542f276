"""The code environment's tools in real kernels: the libraries the original's prompts ask for,
Plotly figures the studio can show offline, and a DataFrame opened in D-Tale."""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path

import pytest

from app.core.code_exec import OK, CodeResult
from app.core.errors import CodeExecutionError
from app.execution.apps import http_status
from app.execution.dtale_view import dtale_code, open_in_dtale
from app.execution.kernel import CodeKernel
from app.execution.pool import KernelPool
from app.execution.printed import PLOTLY_SRC


def test_the_tools_the_prompts_ask_for_import_in_the_kernel(pool: KernelPool) -> None:
    result = pool.run(
        "import json, importlib.metadata as m\n"
        "import dtale, sweetviz, bokeh, altair, networkx, pyvis, plotly\n"
        "print(json.dumps({n: m.version(n) for n in "
        "('dtale', 'sweetviz', 'bokeh', 'altair', 'networkx', 'pyvis')}))",
        timeout=180,
    )
    assert result.status == OK, result.stderr
    versions = json.loads(result.stdout.strip().splitlines()[-1])
    pinned = dict(line.split("==") for line in (Path(__file__).parents[2] / "requirements-jupyter.txt")
                  .read_text().splitlines() if "==" in line and not line.startswith("#"))
    assert versions == {name: pinned[name] for name in versions}


def test_a_networkx_graph_and_a_sweetviz_report_work(tmp_path: Path) -> None:
    kernel = CodeKernel(tmp_path).start()
    try:
        result = kernel.run(
            "import networkx as nx, pandas as pd, sweetviz\n"
            "g = nx.path_graph(4)\nprint(nx.shortest_path(g, 0, 3))\n"
            "df = pd.DataFrame({'a': range(20), 'b': [i % 3 for i in range(20)]})\n"
            "sweetviz.analyze(df).show_html('report.html', open_browser=False, layout='vertical')\n",
            timeout=240,
        )
    finally:
        kernel.shutdown()
    assert result.status == OK, result.stderr
    assert "[0, 1, 2, 3]" in result.stdout
    assert (tmp_path / "report.html").stat().st_size > 10_000


def test_a_plotly_figure_comes_back_as_a_page_that_loads_plotly_from_the_studio(pool: KernelPool) -> None:
    result = pool.run("import plotly.express as px\npx.bar(x=['a', 'b'], y=[3, 1]).show()", timeout=120)
    assert result.status == OK, result.stderr
    pages = [o.data for o in result.outputs if o.mime == "text/html"]
    assert len(pages) == 1
    page = pages[0]
    assert page.lstrip().lower().startswith("<!doctype html>")
    assert f'src="{PLOTLY_SRC}"' in page and "Plotly.newPlot" in page
    assert not re.search(r"https?://cdn", page)  # nothing from the network
    assert len(page) < 100_000  # plotly.js (4.8 MB) is not copied into every figure


def test_the_newest_dataframe_opens_in_dtale(pool: KernelPool) -> None:
    runs: list[CodeResult] = []
    first = pool.run("import pandas as pd\nolder = pd.DataFrame({'x': [1]})\n"
                     "table = pd.DataFrame({'fruit': ['apple', 'pear'], 'kg': [3, 4]})", timeout=60,
                     persistent=True)
    assert first.status == OK, first.stderr
    view = open_in_dtale(pool, record=runs.append)
    assert (view.name, view.rows, view.columns) == ("table", 2, 2)
    assert view.url.startswith("http://127.0.0.1:") and "/dtale/main/" in view.url
    assert http_status(view.url) == 200
    data_id = view.url.rstrip("/").rsplit("/", 1)[-1]
    port_root = view.url.split("/dtale/")[0]
    with urllib.request.urlopen(f"{port_root}/dtale/data/{data_id}?ids=%5B%220-1%22%5D", timeout=30) as reply:
        assert "pear" in reply.read().decode()
    assert len(runs) == 1 and runs[0].status == OK
    # a name chosen by the person; a wrong one says why
    assert open_in_dtale(pool, "older").name == "older"
    with pytest.raises(CodeExecutionError, match="no variable named nothing_here"):
        open_in_dtale(pool, "nothing_here")
    with pytest.raises(CodeExecutionError, match="not a variable name"):
        dtale_code("a; import os")
    pool.run("x = 1", timeout=30)  # variables no longer kept: the kernel (and D-Tale) ends
    with pytest.raises(CodeExecutionError, match="Keep variables between runs"):
        open_in_dtale(pool)


def test_dtale_written_by_a_model_serves_on_loopback_only(pool: KernelPool) -> None:
    """dtale.show() would serve on the computer's host name; in the kernel it keeps to 127.0.0.1."""
    result = pool.run(
        "import pandas as pd, dtale, dtale.app\n"
        "d = dtale.show(pd.DataFrame({'a': [1]}), host='0.0.0.0', open_browser=False, reaper_on=False)\n"
        "print(d._main_url, dtale.app.ACTIVE_HOST)",
        timeout=180,
    )
    assert result.status == OK, result.stderr
    url, host = result.stdout.split()
    assert url.startswith("http://127.0.0.1:") and host == "127.0.0.1"
