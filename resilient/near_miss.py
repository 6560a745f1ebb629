"""The near-miss guard: a cheap veto for semantic cache hits that differ in what matters.

Sentence embeddings are built to say two texts are *about* the same thing; they
say much less about whether the texts *ask* the same thing. With MiniLM,
"convert 30 degrees Celsius to Fahrenheit" and "... Fahrenheit to Celsius" score
0.98, higher than most true paraphrases. :class:`NearMissGuard` compares the two
texts word by word and vetoes the hit when they disagree on a detail that
changes the answer:

``number``     the numbers differ ("30" vs "40", "three" vs "3" agree)
``negation``   one is negated and the other is not ("can" / "cannot", "with" / "without")
``opposite``   one uses a term and the other its opposite (enable/disable, illegal/legal)
``order``      the same things related in the other direction ("A to B" / "B to A", "A than B")
``entity``     a name, acronym or identifier in one is missing from the other
``qualifier``  one adds a specific restriction the other lacks ("... in Python", "... for kids")

It is pure Python on a few dozen words (about 0.1 ms; bench/RESULTS.md), far below the
cost of the embedding it double-checks. It errs on the side of vetoing: a
veto costs one upstream call, a wrong hit serves a wrong answer.
"""

from __future__ import annotations

import re

__all__ = ["NearMissGuard", "near_miss"]

_WORD = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-'’][A-Za-z0-9]+)*|\d+(?:[.,:/]\d+)*%?|\$\d+(?:[.,]\d+)*")
_SENTENCE_START = re.compile(r"(?:^|[.!?:;\n]\s*|[\"(\[]\s*)$")

_NUMBER_WORDS = {
    "zero": "0", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7",
    "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12", "thirteen": "13", "fourteen": "14",
    "fifteen": "15", "sixteen": "16", "seventeen": "17", "eighteen": "18", "nineteen": "19", "twenty": "20",
    "thirty": "30", "forty": "40", "fifty": "50", "sixty": "60", "seventy": "70", "eighty": "80", "ninety": "90",
    "hundred": "100", "thousand": "1000", "million": "1000000", "billion": "1000000000", "dozen": "12",
    "ii": "2", "iii": "3", "iv": "4", "vi": "6", "vii": "7", "viii": "8", "ix": "9", "xi": "11", "xii": "12",
    "first": "1st", "second": "2nd", "third": "3rd", "fourth": "4th", "fifth": "5th", "sixth": "6th",
    "seventh": "7th", "eighth": "8th", "ninth": "9th", "tenth": "10th", "half": "0.5", "twice": "x2",
    "double": "x2", "triple": "x3",
}
_ORDINAL = re.compile(r"^(\d+)(?:st|nd|rd|th)$")

_NEGATIONS = frozenset(
    "not no never without cannot none nobody nothing nowhere neither nor except excluding lack lacks "
    "lacking avoid avoiding unless".split()
)

# Pairs of terms whose swap changes the answer. Matched on a light stem.
_OPPOSITES_TEXT = """
enable disable, enabled disabled, on off, increase decrease, increases decreases, raise lower, add remove,
adding removing, insert delete, create delete, install uninstall, encrypt decrypt, encode decode, compress decompress,
import export, upload download, push pull, start stop, open close, lock unlock, connect disconnect, show hide,
allow deny, accept reject, include exclude, win lose, buy sell, buying selling, rent own, borrow lend, send receive,
before after, above below, over under, inside outside, upper lower, first last, early late, earlier later,
maximum minimum, max min, largest smallest, biggest smallest, highest lowest, most least, more less, more fewer,
best worst, better worse, fastest slowest, faster slower, longest shortest, longer shorter, heaviest lightest,
hot cold, hotter colder, warm cool, big small, large small, tall short, high low, long short, heavy light, wide narrow,
fast slow, old new, older newer, oldest newest, young old, cheap expensive, cheapest most, rich poor, strong weak,
hard easy, harder easier, difficult easy, good bad, positive negative, true false, correct incorrect, valid invalid,
legal illegal, safe dangerous, safe unsafe, healthy unhealthy, pros cons, advantages disadvantages,
advantage disadvantage, benefits drawbacks, benefits risks, love hate, like dislike, agree disagree, success failure,
succeed fail, pass fail, profit loss, gain loss, gain lose, import export, sync async, synchronous asynchronous,
ascending descending, asc desc, left right, north south, east west, input output, client server, frontend backend,
sum difference, add subtract, multiply divide, encode decode, serialize deserialize, read write, reads writes,
uppercase lowercase, upper lower, public private, static dynamic, mutable immutable, local global, local remote,
male female, men women, man woman, boy girl, husband wife, father mother, son daughter, brother sister,
day night, morning evening, summer winter, spring autumn, spring fall, sunrise sunset, dawn dusk, arrival departure,
arrive leave, import export, celsius fahrenheit, metric imperial, km miles, kg pounds, meters feet, inches centimeters,
cats dogs, cat dog, vegetarian vegan, tea coffee, iphone android, windows mac, windows linux, mac linux, ios android,
python javascript, java python, sql nosql, tcp udp, get post, http https, ipv4 ipv6, cpu gpu, ram rom,
mean median, mean mode, median mode, permutation combination, permutations combinations, speed velocity,
weather climate, virus bacteria, viral bacterial, mitosis meiosis, dna rna, import export, acid base,
debit credit, stocks bonds, assets liabilities, revenue profit, gross net, pretax aftertax, inflation deflation,
deposit withdraw, deposit withdrawal, include exclude, inclusive exclusive, union intersection, and or,
optimistic pessimistic, introvert extrovert, expand collapse, happy sad, happiest saddest, hottest coldest,
warmest coldest, warmest coolest, wettest driest, busiest quietest, richest poorest, strongest weakest,
easiest hardest, safest dangerous, cheapest expensive, earliest latest, highest lowest, tallest shortest,
oldest youngest, closest farthest, nearest farthest, heaviest lightest
"""

_PREFIXES = ("un", "in", "im", "il", "ir", "dis", "non", "non-", "anti", "de")

# Words that carry no specific restriction (politeness, question framing, vague degree).
_STOP = frozenset(
    """a an the this that these those there here it its it's i i'm me my mine you your yours we our us they their them
    he she his her him is are was were be been being am do does did doing done have has had having will would shall
    should can could may might must ought to of in on at by for from with about as into onto upon than then so such
    what which who whom whose when where why how whether if or and but also too very really quite just only even
    please kindly tell explain describe give show help let know want need like get got make makes made any some
    all each every much many lot lots way ways thing things something anything everything someone anyone people
    person one ones good best better great nice possible possibly actually basically simply simple simplest easy
    easiest quick quickly short briefly brief overview summary summarize detail details detailed step steps
    guide example examples well use used using uses mean means meaning okay ok hi hello thanks thank yes
    write writing say saying said go going gone come coming look looking see seen find found able can't
    difference differences between vs versus compare comparison compared other another same different kind kinds
    type types sort sorts main major top important most common usual usually typical typically generally general
    overall really still ever recommend recommended suggestion suggestions tip tips idea ideas option options
    answer question questions quora someone's one's anyone's reason reasons happen happens happened work works
    real main new whats what's hows how's whys why's im ive i've id i'd look looks share tell told""".split()
)

# Words that give a direction to the things on either side ("A to B" is not "B to A").
_RELATIONS = frozenset("to into from than vs versus before after against onto toward towards".split())


def _stem(word: str) -> str:
    """A light stem, enough to match "causes"/"cause", "making"/"make", "mainly"/"main"."""
    w = word.lower().replace("’", "'")
    if w.endswith("'s"):
        w = w[:-2]
    if len(w) <= 4 or not w.isalpha():
        return w
    if w.endswith("ies"):
        return w[:-3] + "y"
    for suffix in ("ing", "ly", "ed", "es", "s"):
        if w.endswith(suffix) and len(w) - len(suffix) >= 3 and not w.endswith("ss"):
            w = w[: -len(suffix)]
            break
    return w[:-1] if w.endswith("e") and len(w) > 3 else w


def _build_opposites() -> dict[str, set[str]]:
    table: dict[str, set[str]] = {}
    for pair in _OPPOSITES_TEXT.replace("\n", " ").split(","):
        words = pair.split()
        if len(words) != 2:
            continue
        a, b = (_stem(w) for w in words)
        table.setdefault(a, set()).add(b)
        table.setdefault(b, set()).add(a)
    return table


_OPPOSITES = _build_opposites()


class _Text:
    """The word-level facts the guard compares, computed once per text."""

    __slots__ = ("words", "stems", "stem_set", "numbers", "negated", "entities", "content")

    def __init__(self, text: str) -> None:
        tokens = [(m.group(0), m.start()) for m in _WORD.finditer(text)]
        self.words = [t.lower().replace("’", "'") for t, _ in tokens]
        self.stems = [_stem(w) for w in self.words]
        self.stem_set = set(self.stems)
        numbers = []
        negated = 0
        entities = set()
        for (raw, start), word, stem in zip(tokens, self.words, self.stems):
            number = _number(word)
            if number is not None:
                numbers.append(number)
                continue
            if word in _NEGATIONS or word.endswith("n't"):
                negated += 1
            if _is_entity(raw, text, start):
                entities.add(stem)
        self.numbers = sorted(numbers)
        self.negated = negated
        self.entities = entities
        self.content = [s for s in self.stems if s not in _STOP and s not in _NEGATIONS and not s.endswith("n't")]


def _number(word: str) -> str | None:
    if word in _NUMBER_WORDS:
        return _NUMBER_WORDS[word]
    word = word.lstrip("$").rstrip("%")
    ordinal = _ORDINAL.match(word)
    if ordinal:
        return ordinal.group(0)
    if word[:1].isdigit():
        try:
            value = float(word.replace(",", ""))
        except ValueError:
            return word
        return f"{value:g}"
    return None


def _is_entity(raw: str, text: str, start: int) -> bool:
    """A name, acronym or identifier: capitalised mid-sentence, all caps, or letters mixed with digits."""
    if any(c.isdigit() for c in raw):
        return True
    if len(raw) >= 2 and raw.isupper():
        return raw not in ("I", "OK")
    if raw[0].isupper() and raw != "I" and not _SENTENCE_START.search(text[:start]):
        return raw.lower() not in _STOP
    return False


def near_miss(query: str, candidate: str) -> str | None:
    """Why ``candidate``'s answer must not be served for ``query`` (a reason word), or ``None``."""
    return NearMissGuard().check(query, candidate)


class NearMissGuard:
    """The default guard of :func:`resilient.semantic_cache`; call it as ``guard(query, candidate) -> bool``."""

    def __call__(self, query: str, candidate: str) -> bool:
        return self.check(query, candidate) is None

    def __repr__(self) -> str:
        return "NearMissGuard()"

    def check(self, query: str, candidate: str) -> str | None:
        """The first disagreement found (``number``, ``negation``, ...), or ``None`` to approve."""
        q, c = _Text(query), _Text(candidate)
        if q.numbers != c.numbers:
            return "number"
        if (q.negated > 0) != (c.negated > 0):
            return "negation"
        if _opposite(q, c) or _opposite(c, q):
            return "opposite"
        if _reordered(q, c):
            return "order"
        if _lost(q.entities, c) or _lost(c.entities, q):
            return "entity"
        if _qualified(q, c) or _qualified(c, q):
            return "qualifier"
        return None


def _opposite(a: _Text, b: _Text) -> bool:
    """``a`` says X where ``b`` says not-X (and ``b`` does not also say X)."""
    for stem in a.stem_set - b.stem_set:
        for other in _OPPOSITES.get(stem, ()):
            if other in b.stem_set and other not in a.stem_set:
                return True
        for prefix in _PREFIXES:
            if stem.startswith(prefix) and len(stem) - len(prefix) >= 4 and stem[len(prefix):] in b.stem_set:
                return True
            if (prefix + stem) in b.stem_set and len(stem) >= 4:
                return True
    return False


def _reordered(a: _Text, b: _Text) -> bool:
    """The same two things in opposite order: around a directional word in both, or as the only change.

    Paraphrases reorder freely ("list in Python" / "Python list"), so a swap alone
    counts only when it is the *only* difference between the two wordings.
    """
    if _transposed(a.stems, b.stems):
        return True
    pos_a = _single_positions(a)
    pos_b = _single_positions(b)
    shared = [s for s in pos_a if s in pos_b]
    for i, x in enumerate(shared):
        for y in shared[i + 1 :]:
            if (pos_a[x] < pos_a[y]) != (pos_b[x] < pos_b[y]):
                if _related(a, pos_a[x], pos_a[y]) and _related(b, pos_b[x], pos_b[y]):
                    return True
    return False


def _transposed(a: list[str], b: list[str]) -> bool:
    """``b`` is ``a`` with exactly two different words swapped ("Romans conquer Greeks")."""
    if len(a) != len(b) or a == b:
        return False
    diff = [i for i, (x, y) in enumerate(zip(a, b)) if x != y]
    return len(diff) == 2 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]]


def _single_positions(t: _Text) -> dict[str, int]:
    seen: dict[str, int] = {}
    repeated = set()
    for i, stem in enumerate(t.stems):
        if stem in _STOP or stem in _RELATIONS:
            continue
        if stem in seen:
            repeated.add(stem)
        seen[stem] = i
    return {s: i for s, i in seen.items() if s not in repeated}


def _related(t: _Text, i: int, j: int) -> bool:
    lo, hi = (i, j) if i < j else (j, i)
    return any(w in _RELATIONS for w in t.words[lo + 1 : hi])


def _lost(entities: set[str], other: _Text) -> bool:
    return any(e not in other.stem_set for e in entities)


def _qualified(a: _Text, b: _Text) -> bool:
    """``a`` is ``b`` plus a restriction of its topic ("pancakes" / "vegan pancakes", "... at night").

    Extra words in the leading frame of a question ("What's the command to ...")
    do not count: only extra content after the first word both texts share, and
    only when ``b`` adds nothing of its own.
    """
    if any(s not in a.stem_set for s in b.content):
        return False
    shared = [i for i, s in enumerate(a.content) if s in b.stem_set]
    if not shared:
        return False
    return any(s not in b.stem_set for s in a.content[shared[0] + 1 :])
