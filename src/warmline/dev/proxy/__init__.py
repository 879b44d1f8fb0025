"""The AWS proxy: AWS host names reach the emulator from inside a function.

:mod:`~warmline.dev.proxy.server` (:class:`AwsProxy`) serves the environments'
``HTTPS_PROXY``; :mod:`~warmline.dev.proxy.routing` decides where a host goes;
:mod:`~warmline.dev.proxy.certs` issues the certificates for the hosts it answers;
:mod:`~warmline.dev.proxy.authorize` is the one hook that judges each request (IAM).
"""
