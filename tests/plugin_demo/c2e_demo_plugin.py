"""A third-party c2e plugin used by the tests: an architecture, a post step and a command."""

import torch
from torch import nn

from c2e_core import hookimpl


class MeanColourNet(nn.Module):
    """Toy architecture: the embedding is the reference's mean colour; ab a linear map of it."""

    size_multiple = 16

    def __init__(self, embed_dim: int = 8):
        super().__init__()
        self.to_ab = nn.Linear(3, 2)

    def embed(self, reference_rgb):
        return reference_rgb.mean(dim=(2, 3))[:, :, None, None]

    def predict_ab(self, l_norm, z):
        ab = torch.tanh(self.to_ab(z[:, :, 0, 0]))[:, :, None, None]
        return ab.expand(l_norm.shape[0], 2, *l_norm.shape[-2:])


def build_mean_colour(config):
    return MeanColourNet(**config)


def invert_ab(lab, target_lab):
    """A post step: ``lab`` and ``target_lab`` are float32 numpy arrays ``[1, 3, rows, W]``."""
    out = lab.copy()
    out[:, 1:] = -lab[:, 1:]
    return out


@hookimpl
def c2e_register_architectures(register):
    register("mean-colour", build_mean_colour, "toy: the reference's mean colour everywhere")


@hookimpl
def c2e_register_processors(register):
    register("invert-ab", "post", invert_ab, "negate a and b")


def _hello(args):
    print(f"hello from the demo plugin, {args.who}")
    return 0


@hookimpl
def c2e_register_commands(subparsers):
    parser = subparsers.add_parser("demo-hello", help="say hello")
    parser.add_argument("who")
    parser.set_defaults(handler=_hello)
