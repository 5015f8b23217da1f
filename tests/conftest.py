"""Settings for the whole suite.

Hypothesis runs without its per-example deadline: on a loaded shared machine a slow example
is not a failure (speed targets live in bench/, never in timed tests). Example counts stay as
each test sets them.
"""

from __future__ import annotations

from hypothesis import settings

settings.register_profile("mawb", deadline=None)
settings.load_profile("mawb")
