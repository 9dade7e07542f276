"""The Gradio front end. The only package that imports gradio; it never imports llama_cpp."""
