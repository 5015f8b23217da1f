"""Test support that the shipped package does not need: the per-contact reference interpreter
the engine is checked against (`support.reference`) and the Chromium/Streamlit harness of the
browser tests and UI benchmarks (`support.browser`). Importable as `support` from the tests
(pytest's `pythonpath`) and from `bench/` scripts (they put `tests/` on `sys.path`)."""
