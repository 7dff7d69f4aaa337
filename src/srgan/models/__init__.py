"""Networks: the SRResNet generator, the SRGAN discriminator, the VGG perceptual loss, and the
one way to build or load a generator (:mod:`srgan.models.factory`)."""

from srgan.models.discriminator import Discriminator
from srgan.models.ensemble import SelfEnsemble
from srgan.models.factory import (
    ARCHS,
    SHIPPED_MODELS,
    GeneratorInfo,
    build_generator,
    load_generator,
    read_generator_weights,
    save_generator,
    unwrap_model,
)
from srgan.models.generator import SRResNet

__all__ = ["ARCHS", "SHIPPED_MODELS", "Discriminator", "GeneratorInfo", "SRResNet", "SelfEnsemble", "build_generator",
           "load_generator", "read_generator_weights", "save_generator", "unwrap_model"]
