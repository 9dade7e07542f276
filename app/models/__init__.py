"""Model files and the model worker: GGUF checks and writing, llama.cpp in a child process."""
