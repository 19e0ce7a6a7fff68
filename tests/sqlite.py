"""An in-memory SQLite database standing in as the default database (the database of `make run`), so that the
services run on it unchanged."""

import contextlib

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.utils import ConnectionHandler, load_backend


@contextlib.contextmanager
def sqlite_as_default(django_db_blocker, models):
    """The tables of `models` on a fresh in-memory SQLite, the default database while the block runs."""
    handler = ConnectionHandler({DEFAULT_DB_ALIAS: {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}})
    settings_dict = handler.settings[DEFAULT_DB_ALIAS]
    connection = load_backend(settings_dict["ENGINE"]).DatabaseWrapper(settings_dict, DEFAULT_DB_ALIAS)
    original = connections[DEFAULT_DB_ALIAS]
    connections[DEFAULT_DB_ALIAS] = connection
    try:
        with django_db_blocker.unblock():
            assert connection.vendor == "sqlite"
            with connection.schema_editor() as editor:
                for model in models:
                    editor.create_model(model)
            yield connection
    finally:
        connection.close()
        connections[DEFAULT_DB_ALIAS] = original
