"""The host plugins' files, shipped with c2e as package data: ``krita/`` and ``gimp/`` (one
folder per host application) and ``client/c2e_client/``, the worker client both vendor.

Nothing here is meant to be imported from c2e's environment: these files run inside Krita's and
GIMP's own Python once ``c2e plugins install`` (:mod:`c2e_core.hosts.install`, which finds this
folder with :mod:`importlib.resources`) has copied them there.
"""
