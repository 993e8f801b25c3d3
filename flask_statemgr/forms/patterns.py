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
#: The escapes ``\xhh`` and ``\uhhhh``, by their number of hex digits.
_HEX_ESCAPES = {"x": 2, "u": 4}
#: Escapes with one spelling that both read alike, inside a character class
#: (where ``\b`` is a backspace) and outside one (``\A``, ``\Z``).
_CONTROLS = {letter: "\\" + letter for letter in "ntrfv"}
_CLASS_ESCAPES = {**_CONTROLS, "b": r"\x08"}
_ESCAPES = {**_CONTROLS, "A": "^", "Z": END}


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
    translation = _Translation(regex)

    if not isinstance(regex.pattern, str):
        translation.refuse("a bytes pattern")

    if regex.flags & ~(re.UNICODE | re.ASCII):
        translation.refuse("flags")

    if matcher not in (re.match, re.search, re.fullmatch):
        translation.refuse("a custom matcher")

    pattern = translation.run()

    if matcher is re.search:
        return pattern

    if matcher is re.fullmatch:
        return f"^(?:{pattern}){END}"

    # A JSON Schema pattern matches anywhere, re.match only at the start.
    if pattern.startswith("^") and "|" not in pattern:
        return pattern

    return f"^(?:{pattern})"


#: Characters outside a class and escapes that read differently in the two.
_OUTSIDE = {".": r"[^\n]", "$": _DOLLAR, "}": r"\}", "]": r"\]"}


class _Translation:
    """One pattern read left to right, each piece written as both read it."""

    def __init__(self, regex: re.Pattern[t.Any]) -> None:
        self.regex = regex
        self.source: str = regex.pattern
        self.ascii_only = bool(regex.flags & re.ASCII)
        #: Where the next piece starts.
        self.i = 0
        self.in_class = False

    def refuse(self, what: str) -> t.NoReturn:
        raise ValueError(
            f"the regular expression {self.regex.pattern!r} has no JSON Schema pattern that"
            f" Python and JavaScript read the same way ({what}); rewrite it without that"
        )

    def run(self) -> str:
        out: list[str] = []

        while self.i < len(self.source):
            out.append(self._piece())

        if self.in_class:
            self.refuse("an unclosed character class")

        return "".join(out)

    def _piece(self) -> str:
        char = self.source[self.i]

        if char == "\\":
            return self._escape()

        if self.in_class:
            # Only a "]" ends the class; the rest is as it stands.
            self.in_class = char != "]"
            self.i += 1
            return char

        if char == "[":
            return self._class()

        if char == "(":
            return self._group()

        if char in "*+?{":
            return self._quantifier(char)

        self.i += 1
        return _OUTSIDE.get(char, char)

    def _escape(self) -> str:
        source, in_class = self.source, self.in_class
        letter = source[self.i + 1 : self.i + 2]
        self.i += 2
        fixed = (_CLASS_ESCAPES if in_class else _ESCAPES).get(letter)

        if fixed is not None:
            return fixed

        if letter.lower() in _CLASSES:
            return self._shorthand(letter)

        if letter in ("b", "B") and not in_class:
            return self._boundary(letter)

        digits = _HEX_ESCAPES.get(letter, 0)

        if digits and re.fullmatch(f"[0-9a-fA-F]{{{digits}}}", source[self.i : self.i + digits]):
            self.i += digits
            return f"\\{letter}{source[self.i - digits : self.i]}"

        if letter == "0" and not source[self.i : self.i + 1].isdigit():
            return r"\x00"

        if letter and not letter.isalnum() and letter.isascii():
            return _escape(letter)

        self.refuse(f"\\{letter}")

    def _shorthand(self, letter: str) -> str:
        lower = letter.lower()
        chars = _ASCII_CLASSES[lower] if self.ascii_only else python_class(lower)

        if self.in_class:
            if letter != lower:
                self.refuse(f"\\{letter} in a character class")
            return chars

        return f"[^{chars}]" if letter != lower else f"[{chars}]"

    def _boundary(self, letter: str) -> str:
        # A boundary by the word characters the regex has in mind;
        # python-jsonschema reads the pattern without its flags.
        word = _ASCII_CLASSES["w"] if self.ascii_only else python_class("w")
        ahead, behind = f"(?=[{word}])", f"(?<=[{word}])"
        not_ahead, not_behind = f"(?![{word}])", f"(?<![{word}])"

        if letter == "b":
            return f"(?:{behind}{not_ahead}|{not_behind}{ahead})"

        return f"(?:{behind}{ahead}|{not_behind}{not_ahead})"

    def _class(self) -> str:
        source = self.source
        self.in_class = True
        piece = "["
        self.i += 1

        if source.startswith("^", self.i):
            piece += "^"
            self.i += 1

        if source.startswith("]", self.i):
            # A leading "]" is a literal in Python, an empty class in
            # ECMA-262.
            piece += r"\]"
            self.i += 1

        return piece

    def _group(self) -> str:
        source, i = self.source, self.i

        if source.startswith("(?#", i):
            self.i = source.index(")", i) + 1
            return ""

        if source.startswith(("(?:", "(?=", "(?!"), i):
            self.i = i + 3
            return source[i : i + 3]

        if source.startswith(("(?<=", "(?<!"), i):
            self.i = i + 4
            return source[i : i + 4]

        if source.startswith("(?P<", i):
            # A named group is a plain group to JSON Schema.
            self.i = source.index(">", i) + 1
            return "("

        if source.startswith("(?", i):
            self.refuse("inline flags, atomic groups, conditionals or named references")

        self.i = i + 1
        return "("

    def _quantifier(self, char: str) -> str:
        source = self.source
        quantifier = _QUANTIFIER.match(source, self.i) if char == "{" else None

        if char == "{" and quantifier is None:
            # A literal in Python, a syntax error in ECMA-262.
            self.i += 1
            return r"\{"

        if quantifier is not None:
            low, comma, high = quantifier.groups()
            if not low and not high:
                self.refuse("an empty quantifier")
            piece = "{" + (low or "0") + comma + high + "}"
            self.i = quantifier.end()
        else:
            piece = char
            self.i += 1

        if source.startswith("?", self.i):
            piece += "?"
            self.i += 1

        if source.startswith("+", self.i):
            self.refuse("a possessive quantifier")

        return piece


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
