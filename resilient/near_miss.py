"""The near-miss guard: a cheap veto for semantic cache hits that differ in what matters.

Sentence embeddings are built to say two texts are *about* the same thing; they
say much less about whether the texts *ask* the same thing. With MiniLM,
"convert 30 degrees Celsius to Fahrenheit" and "... Fahrenheit to Celsius" score
0.98, higher than most true paraphrases. :class:`NearMissGuard` compares the two
texts word by word (light stems, a small synonym table, ordinals read as numbers,
acronyms matched to the words they stand for) and vetoes the hit when they
disagree on a detail that changes the answer:

``number``     a number was changed ("30" vs "40"; "three" / "3", "2nd" / "second" agree)
``negation``   one is negated and the other is not ("can" / "cannot", "with" / "without")
``opposite``   one uses a term and the other its opposite (enable/disable, illegal/legal)
``order``      the same things related in the other direction ("A to B" / "B to A", "A than B")
``entity``     a name, acronym or identifier was replaced by another word ("in Python" / "in R")
``qualifier``  a bare topic got a restriction ("names for a cat" / "... a black cat"); a
               one-sided number or name added to a bare topic is vetoed the same way

Changes and swaps are strong evidence and always veto. One-sided *additions* are
weak evidence: on the Quora pairs, 85% of the pairs the old "any extra content
word" rule vetoed were true paraphrases ("the best riddle you've *ever* heard"),
so the rule cost far more recall than it bought precision. An addition now
vetoes only when the shorter text is a bare topic (at most two content words),
where an extra word is almost always a real restriction. The price, measured
in bench/RESULTS.md: additions to longer prompts ("write a haiku about the ocean
*at night*") pass the guard, and the threshold must catch them.

We also measured, and dropped, a similarity-aware guard (additions tolerated
only above a higher cosine) and a score that adds content-word overlap to the
cosine: neither moved the Quora precision/recall frontier, so the guard keeps
its ``(query, candidate)`` signature and needs no similarity.

It is pure Python on a few dozen words (tens of microseconds on a quiet core),
far below the cost of the embedding it double-checks.
"""

from __future__ import annotations

import re

__all__ = ["NearMissGuard", "near_miss"]

_WORD = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-'’][A-Za-z0-9]+)*|\d+(?:[.,:/]\d+)*(?:%|[A-Za-z]+\b)?|\$\d+(?:[.,]\d+)*")
_SENTENCE_START = re.compile(r"(?:^|[.!?:;\n]\s*|[\"(\[]\s*)$")

_NUMBER_WORDS = {
    "zero": "0", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7",
    "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12", "thirteen": "13", "fourteen": "14",
    "fifteen": "15", "sixteen": "16", "seventeen": "17", "eighteen": "18", "nineteen": "19", "twenty": "20",
    "thirty": "30", "forty": "40", "fifty": "50", "sixty": "60", "seventy": "70", "eighty": "80", "ninety": "90",
    "hundred": "100", "thousand": "1000", "million": "1000000", "billion": "1000000000", "dozen": "12",
    "ii": "2", "iii": "3", "iv": "4", "vi": "6", "vii": "7", "viii": "8", "ix": "9", "xi": "11", "xii": "12",
    "first": "1", "second": "2", "third": "3", "fourth": "4", "fifth": "5", "sixth": "6",
    "seventh": "7", "eighth": "8", "ninth": "9", "tenth": "10", "half": "0.5", "twice": "x2",
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

# Words that name the same thing; compared as the first of their group (after stemming).
_SYNONYMS_TEXT = """
world earth planet globe, largest biggest, large big, highest tallest, smallest tiniest, start begin,
make create, fix repair, car automobile, film movie, buy purchase, help assist, error bug
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
    real main new whats what's hows how's whys why's im ive i've id i'd look looks share tell told
    you've you're you'd you'll we've we're we'd they've they're they'd he's she's ever""".split()
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


def _build_synonyms() -> dict[str, str]:
    table: dict[str, str] = {}
    for group in _SYNONYMS_TEXT.replace("\n", " ").split(","):
        words = [_stem(w) for w in group.split()]
        for w in words[1:]:
            table[w] = words[0]
    return table


_SYNONYMS = _build_synonyms()


def _build_opposites() -> dict[str, set[str]]:
    table: dict[str, set[str]] = {}
    for pair in _OPPOSITES_TEXT.replace("\n", " ").split(","):
        words = pair.split()
        if len(words) != 2:
            continue
        a, b = (_SYNONYMS.get(s, s) for s in map(_stem, words))
        table.setdefault(a, set()).add(b)
        table.setdefault(b, set()).add(a)
    return table


_OPPOSITES = _build_opposites()


class _Text:
    """The word-level facts the guard compares, computed once per text."""

    __slots__ = ("words", "stems", "stem_set", "numbers", "negated", "entities", "content", "acronyms")

    def __init__(self, text: str) -> None:
        tokens = [(m.group(0), m.start()) for m in _WORD.finditer(text)]
        self.words = [t.lower().replace("’", "'") for t, _ in tokens]
        self.stems = [_SYNONYMS.get(s, s) for s in map(_stem, self.words)]
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
        self.acronyms = [t.lower() for t, _ in tokens if 2 <= len(t) <= 6 and t.isupper() and t.isalpha()]
        self.negated = negated
        self.entities = entities
        self.content = [s for s in self.stems if s not in _STOP and s not in _NEGATIONS and not s.endswith("n't")]


def _number(word: str) -> str | None:
    if word in _NUMBER_WORDS:
        return _NUMBER_WORDS[word]
    word = word.lstrip("$").rstrip("%")
    ordinal = _ORDINAL.match(word)
    if ordinal:
        return ordinal.group(1)
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
        only_q, only_c = _unmatched_numbers(q, c), _unmatched_numbers(c, q)
        if only_q and only_c:
            return "number"
        if (q.negated > 0) != (c.negated > 0):
            return "negation"
        if _opposite(q, c) or _opposite(c, q):
            return "opposite"
        if _reordered(q, c):
            return "order"
        lost_q, lost_c = _lost(q.entities, q, c), _lost(c.entities, c, q)
        if (lost_q and _adds(c, q)) or (lost_c and _adds(q, c)):
            return "entity"  # a name swapped for another word
        # One-sided additions: only a bare topic (at most _SHORT content words) counts as restricted.
        for big, small, only, lost in ((q, c, only_q, lost_q), (c, q, only_c, lost_c)):
            if len(set(small.content)) > _SHORT or _adds(small, big):
                continue
            if only:
                return "number"
            if lost:
                return "entity"
            if _qualified(big, small):
                return "qualifier"
        return None


#: A one-sided addition is vetoed only when the shorter text has at most this many content words.
_SHORT = 2


def _unmatched_numbers(a: _Text, b: _Text) -> list[str]:
    """The numbers of ``a`` that ``b`` does not have ("one" in ``b`` matches a 1 in ``a``)."""
    rest = list(b.numbers)
    out = []
    for n in a.numbers:
        if n in rest:
            rest.remove(n)
        elif not (n == "1" and "one" in b.words):
            out.append(n)
    return out


def _adds(a: _Text, b: _Text) -> bool:
    """``a`` has a content word that ``b`` lacks (and does not abbreviate)."""
    return any(s not in b.stem_set and not _spelled_by(s, a, b) for s in a.content)


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


def _lost(entities: set[str], own: _Text, other: _Text) -> bool:
    """An entity that ``other`` neither names nor abbreviates or spells out ("US" / "United States")."""
    return any(
        e not in other.stem_set and not _acronym_of(e, other) and not _spelled_by(e, own, other) for e in entities
    )


def _spelled_by(stem: str, own: _Text, other: _Text) -> bool:
    """``stem`` is one of the words of ``own`` that an acronym of ``other`` stands for ("united" for "US")."""
    if not other.acronyms:
        return False
    kept = [(w, st) for w, st in zip(own.words, own.stems) if w not in ("of", "the", "and", "&")]
    initials = "".join(w[0] for w, _ in kept)
    for acronym in other.acronyms:
        at = initials.find(acronym)
        while at >= 0:
            if any(st == stem for _, st in kept[at : at + len(acronym)]):
                return True
            at = initials.find(acronym, at + 1)
    return False


def _acronym_of(entity: str, other: _Text) -> bool:
    """``entity`` ("us", "usa", "ml") is the initials of consecutive words of ``other``."""
    n = len(entity)
    if not 2 <= n <= 6 or not entity.isalpha():
        return False
    words = [w for w in other.words if w not in ("of", "the", "and", "&")]
    initials = "".join(w[0] for w in words)
    return entity in initials


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
    return any(s not in b.stem_set and not _spelled_by(s, a, b) for s in a.content[shared[0] + 1 :])
