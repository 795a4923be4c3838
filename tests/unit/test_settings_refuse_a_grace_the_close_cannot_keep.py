"""AZURE_JIT_CLOSE_GRACE below what a forced close needs is refused at start, saying why."""

import pytest

from azure_jit_operator.config import Settings, SettingsError

ENV = {"AZURE_JIT_ARM_ENDPOINT": "https://management.azure.com"}


def test_a_grace_shorter_than_a_close_takes_is_refused_with_the_reason() -> None:
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({**ENV, "AZURE_JIT_CLOSE_GRACE": "4s"}).validated()
    message = str(refused.value)
    assert message.startswith("AZURE_JIT_CLOSE_GRACE=4s: must be at least 10s.")
    assert "deletes the allow rule itself" in message
    assert "Use 10s or more." in message


def test_the_minimum_grace_is_accepted() -> None:
    settings = Settings.from_env({**ENV, "AZURE_JIT_CLOSE_GRACE": "10s"}).validated()
    assert settings.close_grace.total_seconds() == 10
