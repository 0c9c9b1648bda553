"""The README documents what a user needs: the two commands, and every setting with its default."""

from __future__ import annotations

from pathlib import Path

from interop.config import Settings

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_every_setting_is_documented_with_its_default() -> None:
    missing = [name for name in Settings.model_fields if f"`INTEROP_{name.upper()}`" not in README]
    assert not missing, f"settings missing from the README's configuration table: {missing}"


def test_the_two_commands_are_there() -> None:
    assert "make run" in README and "make test" in README
