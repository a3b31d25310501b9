"""On/off settings typed on the command line (``--mirror false``) mean what they say (bundle.flags)."""

from __future__ import annotations

import pytest
from conftest import BUNDLE_ROOT
from monai.bundle import ConfigParser

from bundle.flags import as_bool


@pytest.mark.parametrize("value, expected", [
    (True, True), (False, False), ("false", False), ("False", False), ("TRUE", True), ("0", False), (1, True),
    ("off", False), (" yes ", True),
])
def test_as_bool_reads_the_usual_spellings(value, expected):
    assert as_bool(value) is expected


@pytest.mark.parametrize("value", ["maybe", "", 2, None])
def test_as_bool_refuses_anything_else_naming_the_setting(value):
    with pytest.raises(ValueError, match="--mirror"):
        as_bool(value, "mirror")


def _inference(overrides: dict) -> ConfigParser:
    parser = ConfigParser()
    parser.read_config(str(BUNDLE_ROOT / "configs" / "inference.yaml"))
    parser.update({"bundle_root": str(BUNDLE_ROOT), **overrides})
    return parser


def test_lowercase_false_from_the_command_line_switches_settings_off():
    """What ``python -m monai.bundle run ... --mirror false --channels_last false --bias_field_correction false``
    hands the config: text, which used to be true in the config's expressions."""
    parser = _inference({"mirror": "false", "channels_last": "false", "bias_field_correction": "false"})
    inferer = parser.get_parsed_content("inferer")
    assert inferer.mirror is False and inferer.channels_last is False
    names = [type(t).__name__ for t in parser.get_parsed_content("preprocessing").transforms]
    assert "N4BiasFieldCorrectiond" not in names and "Identityd" in names
    defaults = _inference({})
    assert defaults.get_parsed_content("inferer").mirror is True
    assert "N4BiasFieldCorrectiond" in [type(t).__name__ for t in defaults.get_parsed_content("preprocessing").transforms]
