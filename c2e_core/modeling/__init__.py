"""The networks: pure ``nn.Module``s and the Lab colour maths they compute in (:mod:`.colour`).

No file I/O, no device logic, no configuration parsing, and no import of the rest of
``c2e_core`` (an import-linter contract in ``pyproject.toml``). Import the submodules
(``color2embed``, ``correspondence``, ``color_encoder``, ``unet``, ``modulated_conv``,
``efficientnet_lite``, ``colour``); importing this package imports none of them.
"""
