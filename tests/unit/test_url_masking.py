"""Credentials in URLs never reach a log line: one function masks them, and the log filter applies it."""

import logging

import pytest

from agents.secrets import RedactSecretsFilter, mask_url_credentials


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("redis://:hunter2@cache:6379/0", "redis://:***@cache:6379/0"),
        ("amqp://user:hunter2@rabbit//", "amqp://user:***@rabbit//"),
        ("redis://:p@ss@cache:6379/0", "redis://:***@cache:6379/0"),  # an unencoded @ in the password
        ("https://ghp_token@example.com/x", "https://***@example.com/x"),
        (
            "broker at rediss://u:pw@h/1, db at postgres://a:b@db/x",
            "broker at rediss://u:***@h/1, db at postgres://a:***@db/x",
        ),
    ],
)
def test_the_credentials_of_a_url_are_masked(text, masked):
    assert mask_url_credentials(text) == masked


@pytest.mark.parametrize("text", ["memory://", "redis://cache:6379/0", "http://host/p?mail=a@b.c", "no url a@b"])
def test_text_without_credentials_in_a_url_is_unchanged(text):
    assert mask_url_credentials(text) == text


def test_the_log_filter_masks_urls_in_messages_and_arguments():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "broker=%s", ("redis://:hunter2@cache/0",), None)
    assert RedactSecretsFilter().filter(record)
    assert record.getMessage() == "broker=redis://:***@cache/0"
