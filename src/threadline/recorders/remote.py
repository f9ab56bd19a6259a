"""The HTTP client moved to :mod:`threadline.sync.client`, next to the sync code
it belongs with; this name stays so code written against it keeps importing."""

from threadline.sync.client import RemoteRecorder

__all__ = ["RemoteRecorder"]
