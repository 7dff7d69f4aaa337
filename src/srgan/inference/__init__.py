"""Inference: the :class:`Upscaler` engine, its pure helpers (tiling, alpha, bit depth), file
batches, ONNX export and the ``srgan.upscale`` API. Imports torch: load it lazily from shells."""

from srgan.errors import UpscaleOutOfMemory
from srgan.inference.api import upscale
from srgan.inference.files import (
           BatchHooks,
           collect_inputs,
           plan_outputs,
           upscale_batch,
           upscale_file,
           upscale_files,
)
from srgan.inference.pixels import bleed_transparent, split_alpha
from srgan.inference.tiling import (
           DEFAULT_TILE,
           TilePlan,
           iter_tiled_bands,
           pad_to_multiple,
           receptive_radius,
           tiled_forward,
)
from srgan.inference.upscaler import UpscaleConfig, Upscaler

__all__ = ["DEFAULT_TILE", "BatchHooks", "TilePlan", "UpscaleConfig", "UpscaleOutOfMemory", "Upscaler",
           "bleed_transparent", "collect_inputs", "iter_tiled_bands", "pad_to_multiple", "plan_outputs",
           "receptive_radius", "split_alpha", "tiled_forward", "upscale", "upscale_batch", "upscale_file",
           "upscale_files"]
