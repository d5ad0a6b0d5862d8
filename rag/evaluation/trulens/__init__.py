"""The only place that imports TruLens (checked by a test). Everything else talks to it through
plain data: rows of scores and reasons, leaderboard frames, URLs.

- ``session``: the TruLens session on our database, flushed at exit.
- ``providers``: our judges as TruLens providers, and TruLens' OpenAI provider as a judge.
- ``recording``: the triad metrics, recorders, scores and reasons read back, the stored leaderboard.
- ``dashboard`` / ``dashboard_app``: the Streamlit dashboard on 127.0.0.1.
- ``label_feedback``: people's labels written as feedback results, shown beside the judges' scores.
"""
