"""The sync server's routers, one module per area, assembled by
:func:`threadline.sync.server.create_app`:

- :mod:`~threadline.sync.routes.threads`: create, list, read, delete, relations;
- :mod:`~threadline.sync.routes.deltas`: read the log, push on a base version;
- :mod:`~threadline.sync.routes.batch`: many pushes in one request;
- :mod:`~threadline.sync.routes.feed`: the change feed and its live stream;
- :mod:`~threadline.sync.routes.archive`: archive and restore;
- :mod:`~threadline.sync.routes.search`: search and usage;
- :mod:`~threadline.sync.routes.viewer`: the web viewer's pages.

What they share (limits, storage, the caller of a request, error answers) is
:mod:`~threadline.sync.routes.context`; how errors are answered,
:mod:`~threadline.sync.routes.handlers`.
"""
