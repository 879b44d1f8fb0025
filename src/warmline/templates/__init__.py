"""Infrastructure templates, read and written: SAM/CloudFormation, serverless.yml, Terraform.

warmline meets AWS stacks in two directions. ``warmline dev --template/--serverless/
--terraform`` *reads* an existing stack unchanged into a :class:`~warmline.config.DevConfig`
(with notes on what does not run locally); ``warmline deploy render`` *writes* a SAM
template or a Terraform file from ``warmline.toml``. Each format is one subpackage holding
both directions, so what a reader accepts and what the writer emits are kept side by side
and checked against each other (a rendered template reads back into the same config):

- :mod:`~warmline.templates.cloudformation`: ``read`` (``translate_template``), ``write``
  (``write_sam``), and the CloudFormation language both meet: ``document`` (YAML with the
  short-form tags), ``intrinsics``, ``parameters``, ``resources``, ``events``,
  ``resource_types``;
- :mod:`~warmline.templates.terraform`: ``read`` (``translate_terraform``), ``write``
  (``write_terraform``), ``module`` (variables and references), ``hcl_expr`` (the
  expression evaluator) and ``hcl`` (the HCL writer);
- :mod:`~warmline.templates.serverless`: ``read`` (``translate_serverless``) and
  ``variables`` (``${...}`` resolution); warmline writes no serverless.yml.

What each direction shares across formats sits at the top: readers build through
:mod:`~warmline.templates.build` and report through :mod:`~warmline.templates.report`;
writers render one :mod:`~warmline.templates.plan` (functions, wiring, least-privilege
IAM). :mod:`~warmline.templates.cli_options` holds the ``warmline dev`` options that pick a
reader. Nothing is imported here, so ``import warmline.templates.report`` stays free of
PyYAML and HCL.
"""
