"""Terraform: :mod:`.read` runs a module-free stack locally, :mod:`.write` renders ``main.tf``.

The reader evaluates HCL expressions (:mod:`.hcl_expr`) over python-hcl2's parse; the writer
emits HCL through :mod:`.hcl`. Nothing is imported here, so neither loads the other.
"""
