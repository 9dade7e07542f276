# One context writes an answer; a judge, in a fresh context of its own, scores it from 1 to 5
# (only digit tokens may be drawn).
set_title("Answer and judge")


@prompt_fn
async def judge(question, answer):
    await prompt(f"Question: {question}\nAnswer: {answer}\nScore the answer from 1 (poor) to 5 (excellent): ")
    score = await sample(max_len=1, temperature=0, allowed_tokens=["1", "2", "3", "4", "5"])
    return score.text.strip()


question = "Why is the sea salty?"
await prompt(f"Question: {question}\nAnswer:")
answer = await sample(max_len=96, temperature=0.7, stop_strings=["\nQuestion:"])
print("answer:", answer.text.strip())
print("judge's score:", await judge(question, answer.text.strip()))
