"""Generate the question datasets for the magic 8-ball experiment.

Why this exists: the experiment trains a tiny word-level policy to answer
yes/no questions the way a magic 8-ball would ("Yes", "No" or "Maybe"), first
with supervised fine-tuning on *random* answers and then with RL against a
judge that prefers sensible answers. For that to be learnable and measurable
we need questions whose sensible answer is clear from a few cue words:

* ``effort``   - outcomes within the asker's own control (practice, study,
                 habits, kindness). A sensible realist answers "Yes".
* ``reckless`` - risky, impulsive or foolish actions. A realist answers "No".
* ``chance``   - outcomes decided by luck, weather or other people. A realist
                 answers "Maybe".

Questions are built by combining hand-written templates with hand-written
filler phrases, so the three splits share vocabulary (the policy's vocabulary
is built from the sft and rl questions only; eval words outside it become
<unk>). The eval split is therefore chosen from the leftover pool, preferring
questions whose words all occur in sft/rl.

Outputs (written to ``src/judgerl/data/``):

* ``sft.jsonl``  - 200 questions with a ``target`` drawn at random from a
                   balanced deck of Yes/No/Maybe, independent of the category.
* ``rl.jsonl``   - 90 questions, no target.
* ``eval.jsonl`` - 60 questions, no target.

The script uses only the standard library and fixed seeds, so running it
twice produces byte-identical files.

Usage::

    python scripts/make_questions.py
"""

from __future__ import annotations

import itertools
import json
import random
import re
from collections import Counter
from pathlib import Path

SEED = 8
ANSWERS = ("Yes", "No", "Maybe")
CATEGORIES = ("effort", "reckless", "chance")

# Questions per split and category (sft 200, rl 90, eval 60).
QUOTAS: dict[str, dict[str, int]] = {
    "sft": {"effort": 67, "reckless": 67, "chance": 66},
    "rl": {"effort": 30, "reckless": 30, "chance": 30},
    "eval": {"effort": 20, "reckless": 20, "chance": 20},
}

# In eval, prefer at most this many questions per template and category.
EVAL_MAX_PER_TEMPLATE = 4

# Questions that must appear, with their required category and split.
SEED_QUESTIONS = {
    "Will I be rich someday?": ("chance", "sft"),
    "Should I ask my crush out?": ("effort", "sft"),
    "Will I be successful?": ("effort", "eval"),
}

OUT_DIR = Path(__file__).resolve().parent.parent / "src" / "judgerl" / "data"

# ---------------------------------------------------------------------------
# Templates. Each entry is (template, slot_1_fillers, slot_2_fillers, ...):
# every combination of fillers is substituted into the "{}" slots in order.
# Every filler was chosen so that each combination reads naturally.
# ---------------------------------------------------------------------------

Template = tuple  # (template, *lists of fillers)

SKILLS = [  # (base form, gerund form)
    ("play the piano", "playing the piano"),
    ("play the guitar", "playing the guitar"),
    ("play chess", "playing chess"),
    ("speak Spanish", "speaking Spanish"),
    ("speak French", "speaking French"),
    ("cook", "cooking"),
    ("swim", "swimming"),
    ("draw", "drawing"),
    ("paint", "painting"),
    ("sing", "singing"),
    ("dance", "dancing"),
    ("code", "coding"),
    ("juggle", "juggling"),
    ("ride a bike", "riding a bike"),
]
SKILL_BASE = [b for b, _ in SKILLS]
SKILL_GERUND = [g for _, g in SKILLS]

EXAMS = ["math", "history", "chemistry", "biology", "physics", "French", "Spanish", "driving"]

EFFORT_TEMPLATES: list[Template] = [
    ("Can I learn to {} this year?", SKILL_BASE),
    ("Will I get better at {} if I practice every day?", SKILL_GERUND),
    ("Am I going to improve at {} if I keep practicing?", SKILL_GERUND),
    ("Should I practice {} every day?", SKILL_GERUND[:8]),
    (
        "Should I start {} each morning?",
        [
            "going for a run",
            "stretching",
            "reading a few pages",
            "writing in a journal",
            "making my bed",
            "going for a walk",
            "doing push-ups",
            "eating a healthy breakfast",
        ],
    ),
    ("Will I pass my {} exam if I study hard?", EXAMS),
    ("Should I study for my {} exam tonight?", EXAMS[:5]),
    (
        "Will I feel better if I {}?",
        [
            "sleep eight hours a night",
            "eat more vegetables",
            "go for a walk every day",
            "drink more water",
            "spend less time on my phone",
            "exercise a few times a week",
        ],
    ),
    (
        "Will I sleep better if I {}?",
        ["go to bed earlier", "put my phone away at night", "stop drinking coffee at night"],
    ),
    (
        "Will I get stronger if I {}?",
        ["lift weights every week", "do push-ups every day", "keep going to the gym"],
    ),
    (
        "Will I make new friends if I join a {}?",
        ["book club", "running club", "chess club", "choir", "sports team", "dance class"],
    ),
    (
        "Will I save money if I {}?",
        ["cook at home", "make a budget", "walk instead of driving", "stop buying coffee every day"],
    ),
    (
        "Will I get a better job if I {}?",
        ["learn new skills", "keep learning", "work hard every day", "study at night"],
    ),
    (
        "Should I {}?",
        [
            "ask my crush out",
            "call my grandmother this weekend",
            "apologize to my friend",
            "thank my teacher for her help",
            "help my neighbor carry her groceries",
            "say sorry to my sister",
            "volunteer at the animal shelter",
            "write a kind note to my mom",
            "start saving a little money each month",
            "ask my teacher for extra help",
            "help my brother with his homework",
            "drink more water every day",
        ],
    ),
    (
        "Can I finish {} if I work on it every day?",
        ["my novel", "my science project", "this puzzle", "my thesis", "my painting"],
    ),
    (
        "Will my {} improve if I keep practicing?",
        ["handwriting", "Spanish", "French", "cooking", "drawing", "singing", "chess game"],
    ),
    (
        "Is it a good idea to {}?",
        [
            "practice the piano every day",
            "study a little every night",
            "learn a new word every day",
            "go for a run each morning",
            "read a book every week",
            "save a little money each month",
        ],
    ),
    (
        "Will I be {}?",
        [
            "successful",
            "successful if I work hard",
            "ready for the race if I train every week",
            "a better cook if I practice every day",
        ],
    ),
    (
        "Will I get good grades if I {}?",
        ["study every day", "do all my homework", "pay attention in class", "study hard this year"],
    ),
    (
        "Can I {} if I train every week?",
        ["run a marathon", "get fit", "swim a mile", "run a mile without stopping"],
    ),
    ("Will my garden grow if I water it every day?",),
    ("Will my room stay clean if I tidy it every day?",),
]

RECKLESS_TEMPLATES: list[Template] = [
    (
        "Should I bet my {} on {}?",
        ["savings", "rent money", "paycheck", "car"],
        ["a horse race", "a coin flip", "one hand of poker", "a football game", "a boxing match"],
    ),
    (
        "Should I gamble {} at the casino?",
        ["my savings", "my rent money", "my paycheck", "my college fund", "all my money"],
    ),
    (
        "Should I quit {} tomorrow without a plan?",
        ["my job", "school", "college"],
    ),
    ("Should I quit {} to gamble full time?", ["my job", "school", "college"]),
    (
        "Should I {} my ex {}?",
        ["text", "call"],
        ["at three in the morning", "after a few drinks", "from the party tonight"],
    ),
    (
        "Should I drive home after {}?",
        ["five beers", "drinking all night", "a bottle of wine", "staying awake for two days"],
    ),
    (
        "Should I drive {}?",
        ["with my eyes closed", "fast on an icy road", "while texting my friends", "without my glasses at night"],
    ),
    (
        "Should I skip my {} to {}?",
        ["final exam", "job interview", "sister's wedding", "shift at work"],
        ["go to a party", "play video games all day", "go to the beach"],
    ),
    (
        "Should I spend my {} on {}?",
        ["rent money", "savings", "college fund", "grocery money"],
        ["fancy shoes", "a designer bag", "a huge party"],
    ),
    (
        "Should I take out a loan to {}?",
        [
            "gamble at the casino",
            "bet on a horse race",
            "buy a sports car I cannot afford",
            "throw a huge party",
        ],
    ),
    (
        "Should I {} a stranger online?",
        ["lend my savings to", "send money to", "give my bank password to", "give my home address to"],
    ),
    (
        "Should I {}?",
        [
            "jump off the roof into the pool",
            "swim in the ocean during a storm",
            "climb the mountain without any gear",
            "eat the mushrooms I found in the woods",
            "sign the contract without reading it",
            "yell at my boss in front of everyone",
            "drop out of school to play poker",
            "tell my boss I quit by text",
            "ignore the smoke alarm and go back to sleep",
            "cheat on my final exam",
            "play with fireworks inside the house",
            "lie to my best friend",
            "buy a house I cannot afford",
            "skip work for a week without telling anyone",
            "go hiking alone without any water",
            "get a tattoo of my ex's name",
            "stop taking my medicine without asking my doctor",
            "lie on my job application",
            "leave the stove on while I go out",
            "max out my credit card on a vacation",
            "show up at my ex's house at midnight",
            "ride my bike on the highway without a helmet",
            "pet the angry dog",
            "jump into the river from the bridge",
            "walk home alone through the dark park at night",
            "dive into the shallow end of the pool",
            "climb onto the roof during a storm",
            "swim out past the warning signs",
            "borrow money from a loan shark",
            "send my boss an angry email at midnight",
            "drink a whole bottle of vodka tonight",
            "marry someone I met last week",
            "sell my car to buy lottery tickets",
            "run a red light because I am late",
            "spend my rent money at the casino tonight",
            "get a tattoo after a night of drinking",
            "put all my savings into a friend's crazy scheme",
            "pick a fight with the biggest guy in the bar",
        ],
    ),
    (
        "Is it a good idea to {}?",
        [
            "bet my savings on a horse race",
            "quit my job tomorrow without a plan",
            "gamble my rent money",
            "drive home after five beers",
            "text my ex at three in the morning",
            "skip my final exam",
            "swim in the ocean during a storm",
            "lend my savings to a stranger",
            "put all my savings on one bet",
            "marry someone I met last week",
            "eat the mushrooms I found in the woods",
        ],
    ),
    (
        "Can I {}?",
        [
            "drive home safely after five beers",
            "skip every class and still pass",
        ],
    ),
]

CHANCE_TEMPLATES: list[Template] = [
    (
        "Will it rain on {}?",
        [
            "my wedding day",
            "my birthday",
            "the day of the picnic",
            "Saturday",
            "my graduation day",
            "our camping trip",
            "the day of the big game",
        ],
    ),
    (
        "Will it be sunny {}?",
        ["on my wedding day", "on my birthday", "for the picnic", "this weekend", "for our camping trip", "tomorrow"],
    ),
    ("Will it snow {}?", ["on my birthday", "this weekend", "on Christmas", "tomorrow"]),
    ("Is it going to rain {}?", ["this weekend", "tomorrow", "on my birthday", "during the picnic"]),
    (
        "Will the weather be {} {}?",
        ["nice", "bad"],
        ["for my wedding", "for the picnic", "this weekend", "for our camping trip"],
    ),
    ("Will I win the lottery {}?", ["this week", "this year", "next month", "someday", "tonight"]),
    ("Will I win the raffle {}?", ["at work", "at school", "this week", "tonight"]),
    ("Will I win a prize {}?", ["at the fair", "in the raffle", "in the lucky draw"]),
    (
        "Will my {} on time?",
        ["flight leave", "train arrive", "bus come", "package arrive", "pizza arrive", "flight land", "train leave"],
    ),
    (
        "Will my {} win {}?",
        ["team", "favorite team", "brother's team"],
        ["the game tonight", "the big game", "the championship", "the match this weekend"],
    ),
    (
        "Will {} {} today?",
        ["my friend", "my crush", "my brother", "my sister", "my mom"],
        ["text me back", "call me"],
    ),
    ("Will the coin land on {}?", ["heads", "tails"]),
    ("Will I roll a {} on the next throw?", ["six", "one", "double six"]),
    ("Will I draw {} from the deck?", ["an ace", "a red card", "the queen of hearts"]),
    ("Will the dice land on {}?", ["a six", "an even number"]),
    ("Will it be {} tomorrow?", ["windy", "cold", "warm", "foggy"]),
    ("Will I get {} on my flight?", ["a window seat", "an upgrade"]),
    ("Will I have good luck {}?", ["this week", "today", "this year", "tomorrow"]),
    (
        "Will I find {} today?",
        ["money on the street", "a coin on the sidewalk", "a four-leaf clover", "a lucky penny"],
    ),
    ("Will there be {} on the way {}?", ["traffic", "a storm"], ["home", "to work"]),
    (
        "Will I be {}?",
        ["rich someday", "picked for jury duty", "lucky today", "lucky at the fair", "chosen in the raffle"],
    ),
    ("Will my name be drawn in the {}?", ["raffle", "lottery", "prize draw"]),
    (
        "Will {}?",
        [
            "my flight be delayed",
            "my train be late",
            "the bus be late today",
            "my boss pick my idea",
            "my neighbor's dog bark all night",
            "my favorite band come to my town",
            "my lucky number come up",
            "the store have my size",
            "the concert be sold out",
            "a stranger smile at me today",
            "my crush say yes if I ask",
            "my landlord let me keep a cat",
            "the teacher give us a surprise quiz",
            "the power go out tonight",
            "the storm miss our town",
            "I see a shooting star tonight",
            "I see a rainbow today",
            "my luck change this week",
            "I hear back about the job this week",
            "I hear back about the apartment soon",
            "I find a parking spot near the store",
            "I bump into an old friend today",
            "I get stuck in traffic tomorrow",
        ],
    ),
    (
        "Is it {}?",
        ["going to snow this weekend", "my lucky day", "going to be sunny tomorrow", "going to storm during the picnic"],
    ),
]

TEMPLATES: dict[str, list[Template]] = {
    "effort": EFFORT_TEMPLATES,
    "reckless": RECKLESS_TEMPLATES,
    "chance": CHANCE_TEMPLATES,
}


def words(question: str) -> list[str]:
    """Lower-cased word tokens, roughly as a word-level tokenizer sees them."""
    return re.findall(r"[a-z0-9'-]+", question.lower())


def build_pool(category: str) -> dict[str, int]:
    """All distinct questions for one category, mapped to their template index.

    Dict order is template order, so the pool is deterministic.
    """
    pool: dict[str, int] = {}
    seen: set[str] = set()
    for t, (template, *slots) in enumerate(TEMPLATES[category]):
        for fillers in itertools.product(*slots):
            q = template.format(*fillers)
            if q.lower() not in seen:
                seen.add(q.lower())
                pool[q] = t
    return pool


def check_question(q: str) -> None:
    n = len(q.split())
    assert 4 <= n <= 14, f"bad length ({n} words): {q}"
    assert q.endswith("?"), q
    assert q.split()[0] in {"Will", "Should", "Am", "Can", "Is"}, q


def pick_eval(candidates: list[str], k: int, template_of: dict[str, int], vocab: set[str]) -> list[str]:
    """Greedily pick k eval questions.

    Preference order: templates used fewer than EVAL_MAX_PER_TEMPLATE times
    (so eval is not dominated by one big template), then fewest words
    unknown to the sft+rl vocabulary, then least-used template, then the
    (already shuffled) candidate order.
    """
    picked: list[str] = []
    used: Counter[int] = Counter()
    remaining = list(candidates)
    for _ in range(k):
        best = min(
            remaining,
            key=lambda q: (
                used[template_of[q]] >= EVAL_MAX_PER_TEMPLATE,
                sum(w not in vocab for w in words(q)),
                used[template_of[q]],
                remaining.index(q),
            ),
        )
        picked.append(best)
        used[template_of[best]] += 1
        remaining.remove(best)
    return picked


def make_splits() -> dict[str, list[dict]]:
    rng = random.Random(SEED)
    pools = {c: build_pool(c) for c in CATEGORIES}

    # Sanity checks: format, no question in two categories, seeds present.
    all_lower = [q.lower() for c in CATEGORIES for q in pools[c]]
    dupes = [q for q, n in Counter(all_lower).items() if n > 1]
    assert not dupes, f"questions in more than one category: {dupes}"
    for c in CATEGORIES:
        for q in pools[c]:
            check_question(q)
    for q, (cat, _) in SEED_QUESTIONS.items():
        assert q in pools[cat], f"seed question missing from {cat}: {q}"

    def pinned(c: str, s: str) -> list[str]:
        return [q for q, (cat, split) in SEED_QUESTIONS.items() if cat == c and split == s]

    # sft and rl: seed questions first, then a shuffled slice of the pool.
    chosen: dict[str, dict[str, list[str]]] = {s: {} for s in QUOTAS}
    leftovers: dict[str, list[str]] = {}
    for c in CATEGORIES:
        need = sum(QUOTAS[s][c] for s in QUOTAS)
        assert len(pools[c]) >= need, f"{c}: pool of {len(pools[c])} < {need} needed"
        rest = [q for q in pools[c] if q not in SEED_QUESTIONS]
        rng.shuffle(rest)
        for s in ("sft", "rl"):
            k = QUOTAS[s][c] - len(pinned(c, s))
            chosen[s][c] = pinned(c, s) + rest[:k]
            rest = rest[k:]
        leftovers[c] = rest

    # eval: the policy's vocabulary comes from sft + rl only, so pick eval
    # questions from the leftovers that reuse that vocabulary.
    vocab = {w for s in ("sft", "rl") for c in CATEGORIES for q in chosen[s][c] for w in words(q)}
    for c in CATEGORIES:
        k = QUOTAS["eval"][c] - len(pinned(c, "eval"))
        chosen["eval"][c] = pinned(c, "eval") + pick_eval(leftovers[c], k, pools[c], vocab)

    # Flatten, shuffle within each split, assign ids (and sft targets).
    splits: dict[str, list[dict]] = {}
    for s in QUOTAS:
        items = [(q, c) for c in CATEGORIES for q in chosen[s][c]]
        rng.shuffle(items)
        rows = []
        # SFT targets: a shuffled, balanced deck of the three answers (67/67/66), so the
        # SFT policy has no reason to prefer any answer: it should answer at random.
        deck = [ANSWERS[i % len(ANSWERS)] for i in range(len(items))]
        rng.shuffle(deck)
        for i, (q, c) in enumerate(items):
            row = {"id": f"{s}-{i:03d}", "question": q, "category": c}
            if s == "sft":
                row["target"] = deck[i]
            rows.append(row)
        splits[s] = rows
    return splits


def main() -> None:
    splits = make_splits()
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for name, rows in splits.items():
        with open(OUT_DIR / f"{name}.jsonl", "w", encoding="utf-8", newline="\n") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
    summary = "; ".join(
        f"{name}={len(rows)} ("
        + ", ".join(f"{c}={sum(r['category'] == c for r in rows)}" for c in CATEGORIES)
        + ")"
        for name, rows in splits.items()
    )
    print(f"wrote {OUT_DIR}: {summary}")


if __name__ == "__main__":
    main()
