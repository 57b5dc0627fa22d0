"""DEP dataset codes and the aliases DEP accepts for them (see the README's dataset table)."""

from __future__ import annotations

DATASETS: dict[str, str] = {
    "ext": "extortion",
    "prv": "privacy",
    "nws": "open news",
    "vnd": "vandalism",
    "dds": "DDoS",
    "frm": "underground forum",
}

ALIASES: dict[str, str] = {
    "extortion": "ext",
    "privacy": "prv",
    "opennews": "nws",
    "news": "nws",
    "vandalism": "vnd",
    "ddos": "dds",
    "forum": "frm",
}


class UnknownDatasetError(ValueError):
    """A dataset code DEP does not serve (for instance the connector README's `sanctions`)."""


def resolve_dataset(value: str) -> str:
    """Return the canonical code for a dataset code or alias, or raise with the valid choices."""
    code = value.strip().lower()
    if code in DATASETS:
        return code
    if code in ALIASES:
        return ALIASES[code]
    valid = ", ".join(f"{c} ({name})" for c, name in DATASETS.items())
    aliases = ", ".join(sorted(ALIASES))
    raise UnknownDatasetError(
        f"unknown DEP dataset {value!r}. Valid codes: {valid}; accepted aliases: {aliases}."
    )
