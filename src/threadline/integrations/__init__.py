"""Drop-in stores for agent frameworks, backed by a :class:`~threadline.ThreadStore`.

- :mod:`threadline.integrations.langgraph`: ``ThreadlineSaver`` and
  ``AsyncThreadlineSaver``, LangGraph checkpointers (``pip install
  'threadline[langgraph]'``).
- :mod:`threadline.integrations.openai_agents`: ``ThreadlineSession``, an
  OpenAI Agents SDK session (``pip install 'threadline[openai-agents]'``).

Importing :mod:`threadline` never imports a framework; each module here
imports its own when it is imported.
"""
