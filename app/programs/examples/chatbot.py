# A chatbot in four lines: the context grows with every turn; an empty message ends it.
PREAMBLE = "A friendly assistant answers a person's messages briefly.\n"
await prompt(PREAMBLE)
while text := await user_input("Write a message"):
    await prompt(f"\nPerson: {text}\nAssistant:")
    await sample(max_len=128, stop_strings=["\nPerson:"], return_attention=True)
