"""Test-wide pytest plugins; each lives in tests/support/."""

pytest_plugins = [
    "tests.support.controlplane",
    "tests.support.emulator",
    "tests.support.operator",
    "tests.support.prometheus",
    "tests.support.leaks",
]
