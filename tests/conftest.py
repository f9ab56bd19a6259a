import os

from hypothesis import HealthCheck, settings

# CI machines are shared and slow: no per-example deadline; fewer examples by default.
settings.register_profile(
    "default", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("thorough", max_examples=500, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

# The session's PostgreSQL cluster (started on first use; see tests/pg.py).
from tests.pg import live_server, postgres_dsn  # noqa: E402, F401
