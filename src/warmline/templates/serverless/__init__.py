"""Serverless Framework: :mod:`.read` runs a ``serverless.yml`` service locally.

Its ``${...}`` variables resolve in :mod:`.variables`. Nothing is imported here.
"""
