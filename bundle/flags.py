"""Boolean settings as given on the command line.

``python -m monai.bundle run ... --mirror false`` hands the config the text "false" (fire turns only Python literals
such as ``False`` into booleans), and any non-empty text is true in a config expression, so the configs read their
on/off settings through ``as_bool``, which accepts the usual spellings and refuses anything else.
"""

from __future__ import annotations

TRUE = ("true", "yes", "on", "1")
FALSE = ("false", "no", "off", "0")


def as_bool(value, name: str = "setting") -> bool:
    """``value`` (a bool, 0 or 1, or one of ``TRUE`` / ``FALSE`` in any case) as a bool; ValueError otherwise."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise ValueError(f"--{name} {value!r}: expected true or false")
