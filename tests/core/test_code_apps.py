"""Which code starts a web app (run in the background) and which is ordinary code (run in the kernel)."""

import pytest

from app.core.code_apps import AppKind, detect_app

STREAMLIT = """\
import streamlit as st
import pandas as pd

st.title("Sales dashboard")
df = pd.DataFrame({"month": ["Jan", "Feb", "Mar"], "sales": [120, 95, 143]})
st.bar_chart(df, x="month", y="sales")
if st.button("Say hello"):
    st.write("Hello!")
"""

STREAMLIT_FROM_IMPORT = """\
from streamlit import title, write
title("Hi")
write("there")
"""

DASH = """\
from dash import Dash, html, dcc
import plotly.express as px

app = Dash(__name__)
fig = px.line(x=[1, 2, 3], y=[4, 1, 7])
app.layout = html.Div([html.H1("Demo"), dcc.Graph(figure=fig)])

if __name__ == "__main__":
    app.run(debug=True)
"""

DASH_OLD_API = """\
import dash
import dash_html_components as html

app = dash.Dash()
app.layout = html.Div("hello")
app.run_server(port=8050)
"""

GRADIO = """\
import gradio as gr

def greet(name):
    return "Hello " + name + "!"

demo = gr.Interface(fn=greet, inputs="text", outputs="text")
demo.queue().launch()
"""

FLASK = """\
from flask import Flask, jsonify

app = Flask(__name__)

@app.route("/")
def index():
    return jsonify(status="ok")

if __name__ == "__main__":
    app.run(host="0.0.0.0", port=5000, debug=True)
"""

HTTP_SERVER = """\
import http.server
import socketserver

PORT = 8000
Handler = http.server.SimpleHTTPRequestHandler
with socketserver.TCPServer(("", PORT), Handler) as httpd:
    print("serving at port", PORT)
    httpd.serve_forever()
"""

HTTP_SERVER_CLASS = """\
from http.server import BaseHTTPRequestHandler, HTTPServer

class Hello(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"hi")

HTTPServer(("127.0.0.1", 8080), Hello).serve_forever()
"""

NOTEBOOK_STYLE_FLASK = """\
%pip install flask
!echo starting
from flask import Flask
app = Flask(__name__)
if True:
    %env FLASK_DEBUG=1
app.run()
"""


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (STREAMLIT, AppKind.STREAMLIT),
        (STREAMLIT_FROM_IMPORT, AppKind.STREAMLIT),
        (DASH, AppKind.DASH),
        (DASH_OLD_API, AppKind.DASH),
        (GRADIO, AppKind.GRADIO),
        (FLASK, AppKind.FLASK),
        (HTTP_SERVER, AppKind.HTTP_SERVER),
        (HTTP_SERVER_CLASS, AppKind.HTTP_SERVER),
        (NOTEBOOK_STYLE_FLASK, AppKind.FLASK),
    ],
    ids=["streamlit", "streamlit-from", "dash", "dash-run_server", "gradio", "flask", "socketserver",
         "http.server", "flask-with-magics"],
)
def test_apps_are_recognised(code: str, kind: AppKind) -> None:
    assert detect_app(code) is kind


PANDAS_AND_MATPLOTLIB = """\
import pandas as pd
import matplotlib.pyplot as plt

df = pd.read_csv("data.csv")
df.groupby("city")["temp"].mean().plot(kind="bar")
plt.savefig("temps.png")
print(df.describe())
"""

SUBPROCESS_RUN = """\
import subprocess
result = subprocess.run(["ls", "-l"], capture_output=True, text=True)
print(result.stdout)
"""

ASYNCIO_RUN_WITH_FLASK_IMPORT = """\
import asyncio
from flask import Flask  # only to check it is installed

async def main():
    await asyncio.sleep(0.1)
    return 42

print(asyncio.run(main()))
"""

DASH_APP_NEVER_STARTED = """\
from dash import Dash, html
app = Dash(__name__)
app.layout = html.Div("not started")
"""

GRADIO_INTERFACE_NEVER_LAUNCHED = """\
import gradio as gr
demo = gr.Interface(fn=lambda x: x, inputs="text", outputs="text")
"""

WORDS_IN_STRINGS_AND_COMMENTS = '''\
# To run it: import streamlit and call app.run(), or httpd.serve_forever()
text = "import streamlit as st; demo.launch()"
print(text)
'''

REQUESTS_GET = """\
import requests
r = requests.get("http://127.0.0.1:8000")
print(r.status_code)
"""

WRITES_AN_APP_FILE = """\
%%writefile app.py
import streamlit as st
st.write("hi")
"""

SYNTAX_ERROR = """\
import streamlit as st
st.write("unclosed
"""


@pytest.mark.parametrize(
    "code",
    [PANDAS_AND_MATPLOTLIB, SUBPROCESS_RUN, ASYNCIO_RUN_WITH_FLASK_IMPORT, DASH_APP_NEVER_STARTED,
     GRADIO_INTERFACE_NEVER_LAUNCHED, WORDS_IN_STRINGS_AND_COMMENTS, REQUESTS_GET, WRITES_AN_APP_FILE,
     SYNTAX_ERROR, ""],
    ids=["pandas-matplotlib", "subprocess.run", "asyncio.run-with-flask-import", "dash-not-run",
         "gradio-not-launched", "words-in-strings", "requests-client", "writefile-cell-magic",
         "syntax-error", "empty"],
)
def test_ordinary_code_is_not_an_app(code: str) -> None:
    assert detect_app(code) is None


def test_kinds_name_their_framework_for_people() -> None:
    assert [(k.value, k.label) for k in AppKind] == [
        ("streamlit", "Streamlit app"),
        ("dash", "Dash app"),
        ("gradio", "Gradio app"),
        ("flask", "Flask app"),
        ("http.server", "web server"),
    ]
