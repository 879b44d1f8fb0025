"""warmline.agent: the reference voice agent.

- :mod:`warmline.agent.app`: ``build_app()``, the ConversationRelay routes and history;
- :mod:`warmline.agent.intents`: answer / handoff / end / DTMF menu rules;
- :mod:`warmline.agent.kb`: the knowledge-base index (SQLite FTS5 BM25, optional dense
  vectors) and ``warmline kb build``;
- :mod:`warmline.agent.ranking`: the ``Embeddings`` protocol and reciprocal rank fusion;
- :mod:`warmline.agent.answerers`: the ``Answerer`` protocol and the offline extractive
  default;
- :mod:`warmline.agent.speech`: text shaped for a voice, and streaming chunks.

Nothing is imported here: each module is loaded when it is first needed.
"""
