"""Host applications (Krita, GIMP): installing, removing and packaging their plugins
(:mod:`.install`, ``c2e plugins ...``). Importing this package imports none of its modules.
"""
