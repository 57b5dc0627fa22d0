"""Split a DEP response body into its records while keeping each record's exact text.

The archive stores every record exactly as DEP sent it, so we cannot parse the array and re-serialize
(that would change spacing, key order of duplicates, escapes and number formats). Instead we walk the
top-level array with `raw_decode`, which tells where each element ends.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from dep_assets.dep_client.errors import DepResponseError

_DECODER = json.JSONDecoder()
_WHITESPACE = " \t\n\r"


@dataclass(frozen=True, slots=True)
class RawRecord:
    text: str  # the element's JSON text, byte for byte as in the body (decoded as UTF-8)
    value: object  # the parsed element


def split_json_array(body: bytes, *, context: str) -> list[RawRecord]:
    """Return the elements of a JSON array body, each with its exact text.

    `context` names the dataset and window, so the error says which fetch broke.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DepResponseError(f"{context}: body is not UTF-8 JSON ({error})") from None
    if text.startswith("\ufeff"):  # a BOM is not part of JSON; tolerate it like most parsers
        text = text[1:]
    length = len(text)
    pos = _skip_ws(text, 0)
    if pos >= length:
        raise DepResponseError(f"{context}: body is empty, expected a JSON array")
    if text[pos] != "[":
        raise DepResponseError(f"{context}: body is not a JSON array: {_preview(text)}")
    pos = _skip_ws(text, pos + 1)
    records: list[RawRecord] = []
    if pos < length and text[pos] == "]":
        pos += 1
    else:
        while True:
            try:
                value, end = _DECODER.raw_decode(text, pos)
            except json.JSONDecodeError as error:
                raise DepResponseError(
                    f"{context}: body is not valid JSON at character {error.pos} "
                    f"(record {len(records)}): {error.msg}"
                ) from None
            records.append(RawRecord(text[pos:end], value))
            pos = _skip_ws(text, end)
            if pos < length and text[pos] == ",":
                pos = _skip_ws(text, pos + 1)
                continue
            if pos < length and text[pos] == "]":
                pos += 1
                break
            raise DepResponseError(
                f"{context}: body is not valid JSON: the array is cut short or malformed "
                f"after record {len(records) - 1} (character {pos} of {length})"
            )
    if _skip_ws(text, pos) != length:
        raise DepResponseError(f"{context}: unexpected data after the JSON array (character {pos})")
    return records


def _skip_ws(text: str, pos: int) -> int:
    length = len(text)
    while pos < length and text[pos] in _WHITESPACE:
        pos += 1
    return pos


def _preview(text: str, limit: int = 80) -> str:
    snippet = text.strip()[:limit]
    return repr(snippet) + ("..." if len(text.strip()) > limit else "")
