"""Files on disk: reading and writing images (:mod:`.images`), atomic writes (:mod:`.atomic`),
and the strips of rows huge images are processed in (:mod:`.strips`). Importing this package
imports none of its modules.
"""
