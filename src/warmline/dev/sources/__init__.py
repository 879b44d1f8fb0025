"""Run existing stacks locally: SAM/CloudFormation, serverless.yml and Terraform.

Each translator reads a stack unchanged and produces the emulator's
:class:`~warmline.config.DevConfig` plus notes about what does not run locally:

- :func:`warmline.dev.sources.sam.translate_template` (``warmline dev --template``)
- :func:`warmline.dev.sources.serverless.translate_serverless` (``--serverless``)
- :func:`warmline.dev.sources.terraform.translate_terraform` (``--terraform``)

The command-line options live in :mod:`warmline.dev.sources.cli_options`. Nothing is
imported here, so ``import warmline.dev.sources.report`` stays free of PyYAML and HCL.
"""
