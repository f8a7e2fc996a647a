"""Durations: the one parser behind the duration settings and CLI options."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from pydantic import ValidationError

from supportdesk import durations
from supportdesk.config import Settings


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("45s", 45),
        ("30m", 1800),
        ("12h", 43200),
        ("7d", 604800),
        ("2w", 1209600),
        (" 0s ", 0),
        ("0", 0),
    ],
)
def test_durations(text: str, seconds: int) -> None:
    assert durations.parse(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["7", "d", "7 days", "-1d", "1.5h", "", "00h1"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        durations.parse(text)


@pytest.mark.parametrize(
    ("duration", "text"),
    [
        (timedelta(0), "0"),
        (timedelta(seconds=90), "90s"),
        (timedelta(hours=1), "1h"),
        (timedelta(days=7), "1w"),
        (timedelta(days=180), "180d"),
        (timedelta(hours=36), "36h"),
    ],
)
def test_durations_render_as_they_parse(duration: timedelta, text: str) -> None:
    assert durations.to_text(duration) == text
    assert durations.parse(text) == duration


def test_duration_settings_read_the_environment_and_travel_to_workers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # `to_environ` writes the whole environment: give it a copy that the test throws away
    monkeypatch.setattr(os, "environ", {**os.environ})
    monkeypatch.setenv("SUPPORTDESK_AUTOCLOSE_AFTER", "12h")
    monkeypatch.setenv("SUPPORTDESK_EVENTS_RETAIN", "180d")
    monkeypatch.setenv("SUPPORTDESK_JOBS", "false")
    settings = Settings()
    assert settings.autoclose_after == timedelta(hours=12)
    assert settings.events_retain == timedelta(days=180)
    assert settings.jobs is False
    settings.to_environ()
    assert os.environ["SUPPORTDESK_AUTOCLOSE_AFTER"] == "12h"
    assert Settings() == settings


@pytest.mark.parametrize("name", ["autoclose_after", "events_retain"])
def test_a_bad_duration_setting_is_a_clear_error(name: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(**{name: "soon"})
    error = caught.value.errors()[0]
    assert error["loc"] == (name,)
    assert "invalid duration 'soon'" in error["msg"]
