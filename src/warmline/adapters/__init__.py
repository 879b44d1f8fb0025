"""warmline.adapters: the edge. Raw platform input in, normalized events to the App.

Each adapter is also where the App is composed (:mod:`~warmline.adapters.compose`): the
environment is read once and the ports the App was not given are built from it.
"""
