"""Color2Embed for Krita: Tools > Scripts > Colorize from Reference…

Krita imports this package at start-up (when enabled in the Python Plugin Manager); registering
the extension here is how Krita plugins announce themselves. The logic is in :mod:`.colorize`.
"""

from krita import Krita

from .extension import ColorizeExtension

Krita.instance().addExtension(ColorizeExtension(Krita.instance()))
