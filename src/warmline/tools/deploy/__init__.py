"""``warmline deploy``: AWS templates (SAM, Terraform) and Lambda zips from ``warmline.toml``.

Modules: :mod:`.settings` (the ``[deploy]`` table), :mod:`.model` (one plan, incl. the
least-privilege IAM both templates share), :mod:`.render_sam`, :mod:`.render_terraform`
(with the small HCL writer :mod:`.hcl`) and :mod:`.package`. Nothing is imported here, so
``import warmline.tools.deploy.package`` does not load the renderers.
"""
