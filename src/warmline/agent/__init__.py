"""warmline.agent: the reference voice agent.

- :mod:`warmline.agent.app`: ``build_app()``, the ConversationRelay routes and history;
- :mod:`warmline.agent.intents`: answer / handoff / end / DTMF menu rules;
- :mod:`warmline.agent.kb`: the knowledge-base index (SQLite FTS5 BM25, optional dense
  vectors) and ``warmline kb build``;
- :mod:`warmline.agent.ranking`: the ``Embeddings`` protocol and reciprocal rank fusion;
- :mod:`warmline.agent.answerers`: the ``Answerer`` protocol and the offline extractive
  default;
- :mod:`warmline.agent.speech`: text shaped for a voice, and streaming chunks;
- :mod:`warmline.agent.settings`: the ``[agent]`` table (or ``build_app`` keywords);
- :mod:`warmline.agent.handover`: where a model's answer streams from (``offload``) and its
  budgets;
- :mod:`warmline.agent.tools`: handoff and end of call as tools the model can call;
- :mod:`warmline.agent.providers`: the streaming model clients (OpenAI-compatible, Bedrock).

Nothing is imported here: each module is loaded when it is first needed.
"""
