"""Regular expressions as JSON Schema patterns that Python and JavaScript
read the same way.

A JSON Schema ``pattern`` is ECMA-262; python-jsonschema and the server's
WTForms ``Regexp`` read it with Python's :mod:`re`. The two differ on
``\\d``, ``\\w`` and ``\\s`` (Unicode in Python, mostly ASCII in ECMA-262),
``.`` (line terminators), ``$`` (Python's also matches before a final
newline) and on which escapes they allow. No maintained library translates
between them, so this module writes what both read alike, and refuses what
can't be.
"""

from __future__ import annotations

import functools
import re
import typing as t
from collections.abc import Callable

__all__ = ["END", "portable_pattern", "python_class"]

_QUANTIFIER = re.compile(r"\{(\d*)(,?)(\d*)\}")
#: A Python ``$``: the end, or before a final newline.
_DOLLAR = r"(?=\n?(?![\s\S]))"
#: The very end, Python's ``\Z``.
END = r"(?![\s\S])"
_CLASSES: dict[str, Callable[[str], bool]] = {
    "d": str.isdecimal,
    "s": str.isspace,
    "w": lambda c: c.isalnum() or c == "_",
}
_ASCII_CLASSES = {"d": "0-9", "s": r" \t\n\r\f\v", "w": "A-Za-z0-9_"}


def portable_pattern(regex: re.Pattern[t.Any], matcher: Callable[..., t.Any] = re.match) -> str:
    """A regular expression as a JSON Schema ``pattern`` that Python's
    :mod:`re` and ECMA-262 (with the ``u`` flag, as ajv and browsers use it)
    read the same way, anchored as ``matcher`` (:func:`re.match`,
    :func:`re.search` or :func:`re.fullmatch`) matches. ``\\d``, ``\\s``,
    ``\\w``, ``.`` and ``$`` mean different things in the two, so they are
    spelled out; escapes that ECMA-262 refuses are written as hex escapes.

    :raise ValueError: The expression uses what the two can't share: flags,
        backreferences, possessive quantifiers, atomic groups, conditionals,
        ``\\U`` escapes, ...
    """

    def refuse(what: str) -> t.NoReturn:
        raise ValueError(
            f"the regular expression {regex.pattern!r} has no JSON Schema pattern that"
            f" Python and JavaScript read the same way ({what}); rewrite it without that"
        )

    if not isinstance(regex.pattern, str):
        refuse("a bytes pattern")

    if regex.flags & ~(re.UNICODE | re.ASCII):
        refuse("flags")

    if matcher not in (re.match, re.search, re.fullmatch):
        refuse("a custom matcher")

    source = regex.pattern
    ascii_only = bool(regex.flags & re.ASCII)
    out: list[str] = []
    i = 0
    in_class = False

    def shorthand(letter: str) -> str:
        lower = letter.lower()

        if lower not in _CLASSES:
            refuse(f"\\{letter}")

        chars = _ASCII_CLASSES[lower] if ascii_only else python_class(lower)

        if in_class:
            if letter != lower:
                refuse(f"\\{letter} in a character class")
            return chars

        return f"[^{chars}]" if letter != lower else f"[{chars}]"

    while i < len(source):
        char = source[i]
        piece: str

        if char == "\\":
            letter = source[i + 1 : i + 2]
            i += 2

            if letter in ("A", "Z") and not in_class:
                piece = "^" if letter == "A" else END
            elif letter.lower() in _CLASSES:
                piece = shorthand(letter)
            elif letter == "b" and in_class:
                piece = r"\x08"
            elif letter in ("b", "B") and not in_class:
                # A boundary by the word characters the regex has in mind;
                # python-jsonschema reads the pattern without its flags.
                word = _ASCII_CLASSES["w"] if ascii_only else python_class("w")
                ahead, behind = f"(?=[{word}])", f"(?<=[{word}])"
                not_ahead, not_behind = f"(?![{word}])", f"(?<![{word}])"
                piece = (
                    f"(?:{behind}{not_ahead}|{not_behind}{ahead})"
                    if letter == "b"
                    else f"(?:{behind}{ahead}|{not_behind}{not_ahead})"
                )
            elif letter in ("n", "t", "r", "f", "v"):
                piece = "\\" + letter
            elif letter == "x" and re.fullmatch(r"[0-9a-fA-F]{2}", source[i : i + 2]):
                piece, i = r"\x" + source[i : i + 2], i + 2
            elif letter == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", source[i : i + 4]):
                piece, i = r"\u" + source[i : i + 4], i + 4
            elif letter == "0" and not source[i : i + 1].isdigit():
                piece = r"\x00"
            elif letter and not letter.isalnum() and letter.isascii():
                piece = _escape(letter)
            else:
                refuse(f"\\{letter}")
        elif in_class:
            if char == "]":
                in_class = False
                piece = "]"
            else:
                piece = char
            i += 1
        elif char == "[":
            in_class = True
            piece = "["
            i += 1

            if source.startswith("^", i):
                piece += "^"
                i += 1

            if source.startswith("]", i):
                # A leading "]" is a literal in Python, an empty class in
                # ECMA-262.
                piece += r"\]"
                i += 1
        elif char == "(":
            if source.startswith("(?#", i):
                i = source.index(")", i) + 1
                continue

            if source.startswith(("(?:", "(?=", "(?!"), i):
                piece, i = source[i : i + 3], i + 3
            elif source.startswith(("(?<=", "(?<!"), i):
                piece, i = source[i : i + 4], i + 4
            elif source.startswith("(?P<", i):
                # A named group is a plain group to JSON Schema.
                piece, i = "(", source.index(">", i) + 1
            elif source.startswith("(?", i):
                refuse("inline flags, atomic groups, conditionals or named references")
            else:
                piece, i = "(", i + 1
        elif char in "*+?{":
            quantifier = _QUANTIFIER.match(source, i) if char == "{" else None

            if char == "{" and quantifier is None:
                # A literal in Python, a syntax error in ECMA-262.
                out.append(r"\{")
                i += 1
                continue

            if quantifier is not None:
                low, comma, high = quantifier.groups()
                if not low and not high:
                    refuse("an empty quantifier")
                piece = "{" + (low or "0") + comma + high + "}"
                i = quantifier.end()
            else:
                piece, i = char, i + 1

            if source.startswith("?", i):
                piece, i = piece + "?", i + 1

            if source.startswith("+", i):
                refuse("a possessive quantifier")

            out.append(piece)
            continue
        elif char == ".":
            piece, i = r"[^\n]", i + 1
        elif char == "$":
            piece, i = _DOLLAR, i + 1
        elif char in "}]":
            piece, i = "\\" + char, i + 1
        else:
            piece, i = char, i + 1

        out.append(piece)

    if in_class:
        refuse("an unclosed character class")

    pattern = "".join(out)

    if matcher is re.search:
        return pattern

    if matcher is re.fullmatch:
        return f"^(?:{pattern}){END}"

    # A JSON Schema pattern matches anywhere, re.match only at the start.
    if pattern.startswith("^") and "|" not in pattern:
        return pattern

    return f"^(?:{pattern})"


def _escape(char: str) -> str:
    return f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"


@functools.cache
def python_class(letter: str) -> str:
    """The characters Python's ``\\d``, ``\\s`` or ``\\w`` match, as the
    inside of a character class both Python and ECMA-262 read."""
    test = _CLASSES[letter]
    parts = []
    start = None

    for code in range(0x110001):
        if code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF and test(chr(code)):
            if start is None:
                start = code
            continue

        if start is not None:
            last = code - 1
            first_text = _class_char(start)
            parts.append(first_text if last == start else f"{first_text}-{_class_char(last)}")
            start = None

    return "".join(parts)


def _class_char(code: int) -> str:
    char = chr(code)

    if char.isalnum() or char == "_":
        return char

    return _escape(char) if code <= 0xFFFF else char
