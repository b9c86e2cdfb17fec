"""Models as files: the architecture registry and model construction (:mod:`.build`), the
``c2e-weights`` format and named store (:mod:`.store`), the authors' checkpoint importer
(:mod:`.official`) and the loader that turns any weights spec into a model (:mod:`.loader`).

The files shipped with the package live in :mod:`c2e_core.bundled` (package data). Importing
this package imports none of its modules (no torch).
"""
