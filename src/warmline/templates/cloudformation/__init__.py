"""AWS SAM / CloudFormation: :mod:`.read` runs a stack locally, :mod:`.write` renders one.

Nothing is imported here, so the writer does not load PyYAML and the reader does not load
the deploy plan.
"""
