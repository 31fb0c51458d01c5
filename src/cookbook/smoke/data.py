"""Small, deterministic data the project generates for smoke runs, so tests never download anything.

Three shapes, one per kind of recipe:
- chat: conversations in the `messages` format (user asks, assistant answers; some multi-turn), for PEFT and SFT;
- text: plain sentences, for causal-LM full fine-tuning;
- math: word problems with an exact numeric answer and a worked solution, for reasoning tuning.
Each generator is a pure function of its seed; splits never share an example.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

OPPOSITES = {
    "hot": "cold", "big": "small", "fast": "slow", "light": "dark", "up": "down", "early": "late",
    "happy": "sad", "open": "closed", "full": "empty", "old": "new", "hard": "soft", "high": "low",
    "near": "far", "wet": "dry", "strong": "weak", "rich": "poor", "loud": "quiet", "thick": "thin",
}  # fmt: skip
COLORS = {
    "grass": "green", "the sky": "blue", "snow": "white", "coal": "black", "a banana": "yellow",
    "a tomato": "red", "an orange": "orange", "a plum": "purple", "chocolate": "brown", "ash": "grey",
}  # fmt: skip
WORDS = [
    "apple", "river", "stone", "cloud", "garden", "window", "candle", "forest", "mirror", "rocket",
    "pencil", "castle", "violin", "meadow", "planet", "tiger", "harbor", "lantern", "velvet", "summit",
    "copper", "island", "thunder", "pepper", "marble", "falcon", "saddle", "ribbon", "anchor", "bridge",
]  # fmt: skip
ANIMALS = ["cat", "dog", "fox", "owl", "horse", "rabbit", "otter", "crow", "goat", "wolf"]
ADJECTIVES = ["quick", "lazy", "small", "brave", "quiet", "curious", "old", "young", "clever", "sleepy"]
VERBS = ["runs", "sleeps", "jumps", "waits", "sings", "hides", "walks", "plays", "rests", "looks"]
PLACES = ["river", "garden", "forest", "barn", "hill", "meadow", "house", "bridge", "field", "lake"]
PREPOSITIONS = ["near", "behind", "under", "beside", "across", "inside", "over", "around"]
NAMES = ["Tom", "Ana", "Li", "Sam", "Mia", "Omar", "Eva", "Raj", "Zoe", "Ken"]
ITEMS = ["apples", "books", "coins", "pens", "shells", "stamps", "cards", "marbles"]


def _chat_pair(rng: random.Random) -> tuple[str, str]:
    family = rng.randrange(4)
    if family == 0:
        word, opposite = rng.choice(sorted(OPPOSITES.items()))
        return f"What is the opposite of {word}?", f"The opposite of {word} is {opposite}."
    if family == 1:
        thing, color = rng.choice(sorted(COLORS.items()))
        return f"What color is {thing}?", f"{thing[0].upper()}{thing[1:]} is {color}."
    if family == 2:
        word = rng.choice(WORDS)
        return f"Repeat the word {word} three times.", f"{word} {word} {word}"
    a, b = rng.randrange(10), rng.randrange(10)
    return f"What is {a} plus {b}?", f"{a} plus {b} is {a + b}."


def chat_examples(n: int, seed: int = 0) -> list[dict]:
    """`n` conversations in the `messages` format, some with a system prompt and some multi-turn (a second
    question after the first answer), as in real chat data such as Capybara."""
    rng = random.Random(seed)
    examples = []
    for _ in range(n):
        question, answer = _chat_pair(rng)
        messages = [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
        if rng.random() < 0.3:
            messages.insert(0, {"role": "system", "content": "You are a helpful assistant."})
        if rng.random() < 0.3:
            question, answer = _chat_pair(rng)
            messages += [
                {"role": "user", "content": f"And {question[0].lower()}{question[1:]}"},
                {"role": "assistant", "content": answer},
            ]
        examples.append({"messages": messages})
    return examples


def multi_turn_examples(n: int, seed: int = 0) -> list[dict]:
    """`n` conversations of two or three user/assistant exchanges, half with a system prompt."""
    rng = random.Random(seed)
    examples = []
    for _ in range(n):
        messages = [{"role": "system", "content": "You are a helpful assistant."}] if rng.random() < 0.5 else []
        for _ in range(rng.randint(2, 3)):
            question, answer = _chat_pair(rng)
            messages += [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
        examples.append({"messages": messages})
    return examples


def text_corpus(n: int, seed: int = 0) -> list[dict]:
    """`n` short paragraphs of plain text in a `text` column."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        sentences = [
            f"The {rng.choice(ADJECTIVES)} {rng.choice(ANIMALS)} {rng.choice(VERBS)} "
            f"{rng.choice(PREPOSITIONS)} the {rng.choice(PLACES)}."
            for _ in range(rng.randint(2, 4))
        ]
        rows.append({"text": " ".join(sentences)})
    return rows


def math_problems(n: int, seed: int = 0, *, low: int = 2, high: int = 20, bare_equation: bool = False) -> list[dict]:
    """`n` one-step word problems (numbers `low`..`high`) with a numeric `answer` and a worked `solution`
    (a sentence, or only the equation with `bare_equation`)."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        name, item = rng.choice(NAMES), rng.choice(ITEMS)
        a, b = rng.randint(low, high), rng.randint(low, high)
        if rng.random() < 0.5:
            question = f"{name} has {a} {item} and gets {b} more. How many {item} does {name} have now?"
            equation, answer, rest = f"{a} + {b} = {a + b}", a + b, f" {item}."
        else:
            a, b = max(a, b), min(a, b)
            question = f"{name} has {a} {item} and gives away {b}. How many {item} does {name} have left?"
            equation, answer, rest = f"{a} - {b} = {a - b}", a - b, f" {item} left."
        solution = equation if bare_equation else f"{name} has {equation}{rest}"
        rows.append({"question": question, "solution": solution, "answer": str(answer)})
    return rows


def worked_problems_text(n: int, seed: int) -> list[str]:
    """Plain text the tiny smoke model was not pretrained on: generated word problems, written out with their
    worked solutions, so a short fine-tune has something new to learn."""
    return [f"{row['question']} {row['solution']} The answer is {row['answer']}." for row in math_problems(n, seed)]


def write_smoke_dataset(kind: str, directory: str | Path, n_train: int = 512, n_test: int = 64) -> Path:
    """Write train.jsonl and test.jsonl for `kind` into `directory` (a folder `datasets.load_dataset`
    reads as JSON) and return it. Train and test come from different seeds and share no example."""
    if kind not in GENERATORS:
        raise ValueError(f"unknown smoke data kind {kind!r}: use one of {sorted(GENERATORS)}")
    generate = GENERATORS[kind]
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    train = generate(n_train, seed=1)
    seen = {json.dumps(row, sort_keys=True) for row in train}
    test = [row for row in generate(n_test * 4, seed=2) if json.dumps(row, sort_keys=True) not in seen][:n_test]
    for split, rows in (("train", train), ("test", test)):
        with open(directory / f"{split}.jsonl", "w") as f:
            f.writelines(json.dumps(row) + "\n" for row in rows)
    return directory


def tokenizer_training_text() -> list[str]:
    """Every kind of smoke text, flattened, for training the tiny model's tokenizer."""
    texts = [row["text"] for row in text_corpus(400, seed=11)]
    for row in chat_examples(400, seed=12):
        texts.extend(message["content"] for message in row["messages"])
    for row in math_problems(400, seed=13):
        texts.extend([row["question"], row["solution"], row["answer"]])
    return texts


# Short answers, for instruction tuning with an exact-match metric: every fact is asked in several
# phrasings and under several system prompts, so the held-out split (conversations not in train) asks
# known facts in combinations the model has not seen, and each answer is a single word.
QUESTION_TEMPLATES = {
    "opposite": ["What is the opposite of {}?", "Name the opposite of {}.", "Opposite of {}?", "Tell me the opposite of {}."],
    "color": ["What color is {}?", "Which color is {}?", "Name the color of {}.", "Tell me the color of {}."],
}  # fmt: skip
SYSTEM_PROMPTS = [None, "You are a helpful assistant.", "Answer with one word."]


def short_answers(n: int, seed: int = 0) -> list[dict]:
    """`n` conversations in the `messages` format whose assistant reply is one word (an opposite or a color)."""
    rng = random.Random(seed)
    facts = [("opposite", *pair) for pair in sorted(OPPOSITES.items())] + [
        ("color", *pair) for pair in sorted(COLORS.items())
    ]
    examples = []
    for _ in range(n):
        family, subject, answer = rng.choice(facts)
        question = rng.choice(QUESTION_TEMPLATES[family]).format(subject)
        messages = [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
        system = rng.choice(SYSTEM_PROMPTS)
        if system:
            messages.insert(0, {"role": "system", "content": system})
        examples.append({"messages": messages})
    return examples


def small_math_problems(n: int, seed: int = 0) -> list[dict]:
    """Problems with numbers 1..5 and the bare equation as the worked solution: small enough for the tiny
    smoke model to learn in a few hundred steps (the reasoning recipe's smoke data)."""
    return math_problems(n, seed, low=1, high=5, bare_equation=True)


GENERATORS = {
    "chat": chat_examples,
    "multi_turn": multi_turn_examples,
    "text": text_corpus,
    "math": math_problems,
    "short_answers": short_answers,
    "math-small": small_math_problems,
}


# Preference pairs, for DPO: the same one-word facts as `short_answers`, each with a chosen reply that is right
# and stops, and a rejected one that is either wrong (another fact's answer) or right but rambling on.
def _rambling(answer: str, wrong: str) -> str:
    return f"{answer}, or maybe {wrong}, or {answer} again, it could be {wrong} and so on"


def preference_pairs(n: int, seed: int = 0) -> list[dict]:
    """`n` conversational preference rows: `prompt` (turns ending in a user question), `chosen` and `rejected`
    (one assistant turn each). Chosen is the one-word answer; rejected is a wrong answer or a rambling one."""
    rng = random.Random(seed)
    answers = {
        "opposite": sorted(OPPOSITES.items()),
        "color": sorted(COLORS.items()),
    }
    rows = []
    for _ in range(n):
        family = rng.choice(sorted(answers))
        subject, answer = rng.choice(answers[family])
        wrong = rng.choice([other for _, other in answers[family] if other != answer])
        prompt = [{"role": "user", "content": rng.choice(QUESTION_TEMPLATES[family]).format(subject)}]
        system = rng.choice(SYSTEM_PROMPTS)
        if system:
            prompt.insert(0, {"role": "system", "content": system})
        rejected = wrong if rng.random() < 0.5 else _rambling(answer, wrong)
        rows.append(
            {
                "prompt": prompt,
                "chosen": [{"role": "assistant", "content": answer}],
                "rejected": [{"role": "assistant", "content": rejected}],
            }
        )
    return rows


GENERATORS["preferences"] = preference_pairs
