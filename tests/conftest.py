"""Shared set-up of the plugin's own tests."""

# Imported before any pytester run, for every test file: pytester drops the modules an inner session
# imported, and SQLAlchemy 2.1's compiled parts fail ('InternalTraversal' object is not callable) once
# imported a second time in one process. An inner session with a history store imports it.
import modelperf.store.history  # noqa: F401
