"""``warmline deploy``: AWS templates (SAM, Terraform) and Lambda zips from ``warmline.toml``.

The ``[deploy]`` table is read by :mod:`warmline.config.deploy`; the plan both templates
share (incl. least-privilege IAM) is :mod:`warmline.templates.plan`, rendered by
:mod:`warmline.templates.cloudformation.write` and :mod:`warmline.templates.terraform.write`.
This package builds the Lambda zips (:mod:`.package`). Nothing is imported here, so
``import warmline.tools.deploy.package`` does not load the renderers.
"""
