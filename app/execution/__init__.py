"""Running the code the models write: a Jupyter kernel in venvs/jupyter, its limits, and the
programs it starts (background apps, JupyterLab)."""
