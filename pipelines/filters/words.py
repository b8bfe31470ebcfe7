"""The word splitter the filters share: spaCy's blank English tokenizer, re-implemented small and fast.

datatrove, the reference for our Gopher, FineWeb and C4 filters, splits words with `spacy.blank("en")`
and drops whitespace tokens. Loading and running spaCy costs more than the filters themselves, so this
module follows the same algorithm (spaCy's `Tokenizer._split_affixes` and `_attach_tokens`) with our own
rules:

1. text is cut at whitespace into chunks (`str.split`, the same `isspace` as spaCy's);
2. a chunk loses leading marks one at a time (prefixes: brackets, quotes, `#`, `$`, ...) and trailing marks
   (suffixes: the same plus `'s`, `...`, a unit after a number as in `64MB`, and a period after a digit,
   a lowercase letter, a bracket or two capitals, so that `A.` stays whole), unless what is left is an
   exception;
3. what is left (the core) stays whole if it is an exception (`e.g.`, `C++`) or a URL or e-mail address,
   else is split at infixes: a hyphen or `/ : < > =` before a letter, a comma between letters, a period
   between a lowercase and an uppercase letter, `+ - * ^` between digits, an ellipsis, a symbol;
4. adjacent tokens of one chunk that spell an emoticon (`):`) are joined again, like spaCy's special
   cases; contractions are split the English way (`don't` -> `do n't`, `cannot` -> `can not`).

The exception lists are shorter than spaCy's (on debian-docs, 1 word in 10,000 differs, in runs of
quotes and rare emoticons mostly); `bench/filter_agreement.py` measures that the filters' decisions agree with datatrove's.
Each distinct chunk is split once and remembered (a bounded cache shared by all documents): most chunks
of a document were seen before, so most of the work is `str.split` and a dictionary lookup per chunk.
"""

from __future__ import annotations

import re
import unicodedata
from itertools import chain, islice


# Marks that end a sentence in any script of the Basic Multilingual Plane (Unicode's Sentence_Terminal,
# as datatrove's TERMINAL_PUNCTUATION; it also lists a few historic scripts beyond U+FFFF, left out here).
TERMINAL_PUNCTUATION = frozenset(
    "!.?։؝؞؟۔܀܁܂߹࠷࠹࠽࠾।॥၊။።፧፨᙮᜵᜶។៕៖៙៚᠃᠉᥄᥅᪨᪩᪪᪫᭚᭛᭞᭟᭽᭾᰻᰼᱾᱿‼‽⁇⁈⁉⸮⸼⹓⹔。꓿꘎꘏꛳꛷꡶꡷꣎꣏꤯꧈꧉꩝꩞꩟꫰꫱꯫﹒﹖﹗！．？｡"
)


def char_class(predicate) -> str:
    """Characters of the Basic Multilingual Plane for which `predicate` holds, as regex class ranges."""
    ranges: list[list[int]] = []
    for code in range(0x10000):
        if predicate(chr(code)):
            if ranges and ranges[-1][1] == code - 1:
                ranges[-1][1] = code
            else:
                ranges.append([code, code])
    return "".join(re.escape(chr(a)) + (f"-{re.escape(chr(b))}" if b > a else "") for a, b in ranges)


_ICONS = char_class(lambda c: unicodedata.category(c) == "So")  # symbols split like punctuation
# spaCy counts the CJK blocks as letters, their punctuation (「」《》) included, and letters of scripts
# without case (CJK, Arabic, ...) as both lower and upper case.
_CJK = "\u2e80-\u2fff\u3000-\u303f\u31c0-\u31ef\u3200-\u33ff\ufe30-\ufe4f"
_ALPHA = char_class(str.isalpha) + _CJK
_LOWER = char_class(lambda c: c.islower() or (c.isalpha() and not c.isupper())) + _CJK
_UPPER = char_class(lambda c: c.isupper() or (c.isalpha() and not c.islower())) + _CJK
_QUOTES = re.escape("'\"”“`‘´’‚„»«「」『』（）〔〕【】《》〈〉⟦⟧")
_PUNCT = re.escape(",:;!?¿؟¡()[]{}<>_#*&。？！，、；：～·।،۔؛٪…") + _QUOTES
_CURRENCY = "$£€¥฿₽﷼₠-₿"
_UNITS = (
    "km km² km³ m m² m³ dm dm² dm³ cm cm² cm³ mm mm² mm³ ha µm nm yd in ft kg g mg µg t lb oz m/s km/h kmh mph "
    "hPa Pa mbar mb MB kb KB gb GB tb TB T G M K %"
)

# Matched at the start of a chunk: the mark to split off.
_PREFIX = re.compile(rf"\.\.+|US\$|C\$|A\$|\+(?![0-9])|[§%=—–{_PUNCT}{_CURRENCY}{_ICONS}]")
# Searched in a chunk: the leftmost mark that runs to its end is split off.
_SUFFIX = re.compile(
    rf"(?:[—–{_PUNCT}{_ICONS}]|\.\.+|['’][sS]|(?<=[0-9])(?:\+|[{_CURRENCY}]|{'|'.join(map(re.escape, _UNITS.split()))})"
    rf"|(?<=°[FfCcKk])\.|(?<=[0-9{_LOWER}%²\-+|{_PUNCT}])\.|(?<=[{_UPPER}][{_UPPER}])\.)$"
)
# A last character that is a suffix by itself and ends no longer one: no need to search (the common case).
_SUFFIX_CHARACTER = re.compile(rf"[—–{_PUNCT.replace('…', '')}{_ICONS}]")
_INFIX = re.compile(
    rf"\.\.+|…|[{_ICONS}]|(?<=[0-9])[+\-*^](?=[0-9-])|(?<=[{_LOWER}{_QUOTES}])\.(?=[{_UPPER}{_QUOTES}])"
    rf"|(?<=[{_ALPHA}]),(?=[{_ALPHA}])|(?<=[{_ALPHA}0-9])(?:-|–|—|--|---|——|~)(?=[{_ALPHA}])"
    rf"|(?<=[{_ALPHA}0-9])[:<>=/](?=[{_ALPHA}])"
)
# spaCy keeps a core whole when it is a URL or an e-mail address (its URL_MATCH, without IP addresses).
_HOST_CHAR = r"[A-Za-z0-9\u00a1-\uffff]"
_URL = re.compile(
    rf"(?:[\w+\-.]{{2,}}://)?(?:\S+(?::\S*)?@)?(?:(?:{_HOST_CHAR}[\w\u00a1-\uffff-]{{0,62}})?{_HOST_CHAR}\.)+"
    rf"[{_LOWER}]{{2,63}}(?::\d{{2,5}})?(?:[/?#]\S*)?"
)


def _exceptions() -> dict[str, tuple[str, ...]]:
    """Chunks spaCy's English tokenizer does not split by its rules: chunk -> its tokens."""
    abbreviations = (
        "e.g. i.e. E.g. I.e. E.G. I.E. a.m. p.m. vs. v.s. Mr. Mrs. Ms. Dr. Prof. St. Mt. Jr. Inc. Ltd. Co. co. "
        "Corp. Bros. Gen. Gov. Rep. Sen. Rev. Adm. Messrs. Ph.D. Jan. Feb. Mar. Apr. Jun. Jul. Aug. Sep. Sept. "
        "Oct. Nov. Dec. Ak. Ala. Ariz. Ark. Calif. Colo. Conn. D.C. Del. Fla. Ga. Ia. Id. Ill. Ind. Kan. Kans. "
        "Ky. La. Mass. Md. Mich. Minn. Miss. Mo. Mont. N.C. N.D. N.H. N.J. N.M. N.Y. Neb. Nebr. Nev. Okla. Ore. "
        "Pa. S.C. Tenn. Va. Wash. Wis. C++ and/or w/o"
    )
    emoticons = (
        ":) :( :-) :-( :)) :(( :-)) :-(( :))) :((( :-))) :-((( ;) ;-) ;( :P :p :D :/ :-/ :| :-| :X :x :> :-> "
        ":] :-] :} :* :-* :o :O :3 :-D :-P :-p :-O :-o :-X :-x (: (; (-: (-; (= ): )-: =) =( =/ =3 =D =[ =] =| [: "
        "[= 8) 8-) <3 </3 ^_^ -_- :'( :') o.O O.o XD xD ;D '' ’’"
    )
    elisions = (
        "'s 'S ’s ’S ‘s 'd 'll 're 'em 'bout 'cause 'cos 'coz 'cuz 'nuff ma'am o'clock ol' doin' goin' havin' "
        "lovin' nothin' nuthin' somethin' Ol' Doin' Goin' Havin' Lovin' Nothin' Nuthin' Somethin'"
    )
    exceptions = {word: (word,) for word in " ".join([abbreviations, emoticons, elisions]).split()}
    exceptions |= {"y'all": ("y'", "all"), "c'mon": ("c'm", "on"), "Y'all": ("Y'", "all"), "C'mon": ("C'm", "on")}
    exceptions |= {f"{hour}{noon}": (str(hour), noon) for hour in range(1, 13) for noon in ("am", "pm", "a.m.", "p.m.")}
    exceptions.update({f"{letter}.": (f"{letter}.",) for letter in "abcdefghijklmnopqrstuvwxyzäöü"})
    # Contractions: the first part -> second parts it takes ("do" + "n't"), with and without apostrophe.
    not_verbs = "ai are ca could dare did does do had has have is may might must need ought sha should was "
    not_verbs += "were wo would"
    clitics = {
        "d": "he how i it she that there these they this those we what when where who why you",
        "ll": "he how i it she that there these they this those we what when where who why you",
        "re": "how there these they those we what when where who why you",
        "ve": "could how i might must should would there these they those we what when where who why you",
        "s": "he how it let she that there what when where who why",
        "m": "i",
    }
    # Written without the apostrophe, these are words of their own, which spaCy leaves whole.
    real_words = {"its", "ill", "well", "were", "hell", "shell", "shed", "lets", "whore", "wholl"}
    pairs = [(verb, "n't") for verb in not_verbs.split()]
    pairs += [(host, f"'{clitic}") for clitic, hosts in clitics.items() for host in hosts.split()]
    for first, second in pairs:
        for head in (first, first.capitalize()):
            for apostrophe in ("'", "’"):
                tail = second.replace("'", apostrophe)
                exceptions[head + tail] = (head, tail)
            if (head + second.replace("'", "")).lower() not in real_words:
                exceptions[head + second.replace("'", "")] = (head, second.replace("'", ""))
    for word, parts in {"cannot": ("can", "not"), "gonna": ("gon", "na"), "gotta": ("got", "ta")}.items():
        exceptions[word] = parts
        exceptions[word.capitalize()] = (parts[0].capitalize(), parts[1])
    return exceptions


_EXCEPTIONS = _exceptions()
# Exceptions the affix rules would cut into pieces (emoticons, "C++."): joined again after splitting.
_REJOINED = {chunk for chunk, parts in _EXCEPTIONS.items() if len(parts) == 1 and not chunk.isalpha()}
_REJOINED_PREFIXES = {chunk[:end] for chunk in _REJOINED for end in range(1, len(chunk))}


def _split_chunk(chunk: str) -> tuple[str, ...]:
    """The tokens of one whitespace-free chunk, following spaCy's `_split_affixes` / `_attach_tokens`."""
    if chunk.isalpha():  # no rule splits a run of letters (a third of all distinct chunks)
        return _EXCEPTIONS.get(chunk, (chunk,))
    prefixes: list[str] = []
    suffixes: list[str] = []
    core = chunk
    while core and core not in _EXCEPTIONS:
        match = _PREFIX.match(core)
        pre = match.end() if match else 0
        if pre and core[pre:] in _EXCEPTIONS:
            prefixes.append(core[:pre])
            core = core[pre:]
            break
        if len(core) > pre and _SUFFIX_CHARACTER.match(core[-1]):
            suf = 1
        else:  # searched without the prefix, as spaCy does: lookbehinds don't see it
            match = _SUFFIX.search(core[pre:])
            suf = len(core) - pre - match.start() if match else 0
        if suf and core[:-suf] in _EXCEPTIONS:
            suffixes.append(core[-suf:])
            core = core[:-suf]
            break
        if pre and suf and pre + suf <= len(core):
            prefixes.append(core[:pre])
            suffixes.append(core[-suf:])
            core = core[pre:-suf]
        elif pre:
            prefixes.append(core[:pre])
            core = core[pre:]
        elif suf:
            suffixes.append(core[-suf:])
            core = core[:-suf]
        else:
            break
    tokens = prefixes
    if core in _EXCEPTIONS:
        tokens.extend(_EXCEPTIONS[core])
    elif core and (_URL.fullmatch(core) or not _INFIX.search(core)):
        tokens.append(core)
    elif core:
        start = 0
        for match in _INFIX.finditer(core):
            if match.start() == 0:  # spaCy never splits a core's first character off as an infix
                continue
            if match.start() != start:
                tokens.append(core[start : match.start()])
            tokens.append(match.group())
            start = match.end()
        if core[start:]:
            tokens.append(core[start:])
    tokens.extend(reversed(suffixes))
    return _rejoin(tokens)


def _rejoin(tokens: list[str]) -> tuple[str, ...]:
    """Join runs of tokens that spell an exception (`)` `:` -> `):`), longest run first, as spaCy does."""
    start, end = 0, 0  # the longest run found, the first among equals
    for first in range(len(tokens) - 1):
        joined = tokens[first]
        for last in range(first + 1, len(tokens)):
            if joined not in _REJOINED_PREFIXES:
                break
            joined += tokens[last]
            if joined in _REJOINED and last + 1 - first > end - start:
                start, end = first, last + 1
    if end == 0:
        return tuple(tokens)
    return (*_rejoin(tokens[:start]), "".join(tokens[start:end]), *_rejoin(tokens[end:]))


_CACHE: dict[str, tuple[str, ...]] = {}
_CACHE_SIZE = 1 << 19  # distinct chunks remembered: about 100 MB at most (200 bytes each)


def split_words(text: str) -> list[str]:
    """The words of `text` as datatrove's English `split_into_words` gives them (approximately)."""
    chunks = text.split()
    unseen = set(chunks).difference(_CACHE)
    if len(_CACHE) + len(unseen) > _CACHE_SIZE:  # forget the older half (a dict keeps insertion order)
        for chunk in list(islice(_CACHE, len(_CACHE) // 2)):
            del _CACHE[chunk]
        unseen = set(chunks).difference(_CACHE)
    _CACHE.update((chunk, _split_chunk(chunk)) for chunk in unseen)
    return list(chain.from_iterable(map(_CACHE.__getitem__, chunks)))
