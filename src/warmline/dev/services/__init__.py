"""Local AWS services for ``warmline dev``: one moto server with the stack's resources.

:mod:`~warmline.dev.services.local` starts and stops it (:class:`LocalServices`);
:mod:`~warmline.dev.services.moto_process` is the server process itself.
"""
