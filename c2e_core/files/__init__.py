"""Files on disk: reading and writing images (:mod:`.images`) and atomic writes
(:mod:`.atomic`). Importing this package imports none of its modules.
"""
