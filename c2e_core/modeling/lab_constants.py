"""The sRGB and CIE Lab constants (skimage's), shared by the torch conversion of
:mod:`.colour` and the pipeline's numpy conversion (:mod:`c2e_core.inference.colour`), and the
networks' Lab scaling (:class:`LabScaling`: plain arithmetic, for tensors and arrays alike).

Importing this module imports no torch."""

from __future__ import annotations

from typing import TypeVar

Array = TypeVar("Array")  # a torch tensor or a numpy array

# skimage.color.colorconv.xyz_from_rgb (sRGB specification).
XYZ_FROM_RGB: tuple[tuple[float, float, float], ...] = (
    (0.412453, 0.357580, 0.180423),
    (0.212671, 0.715160, 0.072169),
    (0.019334, 0.119193, 0.950227),
)
# numpy.linalg.inv(XYZ_FROM_RGB) in float64, as skimage computes ``rgb_from_xyz``.
RGB_FROM_XYZ: tuple[tuple[float, float, float], ...] = (
    (3.2404813432005266, -1.5371515162713183, -0.4985363261688878),
    (-0.9692549499965682, 1.8759900014898907, 0.04155592655829284),
    (0.055646639135177166, -0.20404133836651123, 1.0573110696453443),
)
# skimage's xyz_tristimulus_values(illuminant="D65", observer="2").
D65_WHITE: tuple[float, float, float] = (0.95047, 1.0, 1.08883)

LAB_EPS = 0.008856  # skimage's threshold on XYZ / white (forward)
LAB_KAPPA = 7.787
LAB_INV_EPS = 0.2068966  # skimage's threshold on f(t) (inverse)
LAB_OFFSET = 16.0 / 116.0


#: ab predicted by the network are ``tanh`` outputs; multiply by this for Lab units.
AB_SCALE = 110.0
#: Half the range of L: the network sees ``L / L_HALF_RANGE - 1``, L in [0, 100] -> [-1, 1].
L_HALF_RANGE = 50.0


class LabScaling:
    """The network's own input and output scaling (like segment-anything's ``Sam.preprocess``).

    Mixed into the model classes, so callers never write the constants: lightness in [0, 100]
    goes in as ``normalize_lightness(L)``, the network's ab come out as ``ab_from_output(y)``.
    A plain instance is the paper's scaling, for architectures that do not define their own.
    """

    ab_scale: float = AB_SCALE

    def normalize_lightness(self, lum: Array) -> Array:
        """L in [0, 100] -> the network input ``(L - 50) / 50`` in [-1, 1]."""
        return lum / L_HALF_RANGE - 1

    def lightness_from_normalized(self, l_norm: Array) -> Array:
        """The inverse of :meth:`normalize_lightness`."""
        return (l_norm + 1) * L_HALF_RANGE

    def ab_from_output(self, output: Array) -> Array:
        """The network's ab output (``tanh``, in [-1, 1]) -> ab in Lab units."""
        return output * self.ab_scale

    def output_from_ab(self, ab: Array) -> Array:
        """ab in Lab units -> the network's output scale (training targets, reference colours)."""
        return ab / self.ab_scale
