# Answer every row of an uploaded CSV file, several rows at a time: each row gets its own
# context (@prompt_fn) and asyncio.gather runs them together.
import asyncio
import csv
import io

set_title("CSV batch")
rows = list(csv.DictReader(io.StringIO(read_file("questions.csv").decode("utf-8"))))


@prompt_fn
async def answer(row):
    await prompt(f"Question: {row['question']}\nAnswer:")
    result = await sample(max_len=48, temperature=0.2, stop_strings=["\n"])
    return result.text.strip()


answers = await asyncio.gather(*(answer(row) for row in rows))
for row, text in zip(rows, answers):
    print(f"{row['question']} -> {text}")
