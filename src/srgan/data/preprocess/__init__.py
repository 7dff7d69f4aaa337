"""Pre-processing operators and the YAML pipeline that chains them.

Two stages, kept apart on purpose:

* **offline** operators run once on each HR image, *before* its LR image is made
  (``srgan data prepare --preprocess FILE``). CLAHE, sharpening, colour correction and denoising
  live here: they are non-linear and spatial, so running them on HR and LR separately would give
  a pair whose LR is no longer the degraded HR.
* **online** operators run at load time on an ``(lr, hr)`` pair with one random draw per sample
  (colour jitter), optionally ending with one *output* operator that changes the representation
  (colour space or normalisation) and returns float32.

The YAML format (see ``configs/preprocess.yaml``)::

    offline:
      - op: clahe
        clip_limit: 2.0
    online:
      - op: color_jitter
        brightness: 0.1

Every operator is a small frozen dataclass whose fields are its parameters; :data:`OPS` maps the
YAML name to the class. Images are ``(H, W, 3) uint8`` RGB unless stated otherwise.
"""

from srgan.data.preprocess.ops import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    OP_NAMES,
    OPS,
    BilateralDenoise,
    Clahe,
    ColorJitter,
    ColorSpace,
    GrayWorld,
    NLMeansDenoise,
    Normalize,
    OfflineOp,
    Operator,
    OutputOp,
    UnsharpMask,
    WhitePatch,
    seeded_shuffle,
)
from srgan.data.preprocess.pipeline import (
    OfflinePipeline,
    OnlinePipeline,
    PreprocessConfig,
    build_op,
    load_offline_pipeline,
    load_online_pipeline,
    load_preprocess_config,
    op_name,
    op_params,
    parse_preprocess_config,
)

__all__ = [
    "IMAGENET_MEAN", "IMAGENET_STD", "OP_NAMES", "OPS", "BilateralDenoise", "Clahe", "ColorJitter",
    "ColorSpace", "GrayWorld", "NLMeansDenoise", "Normalize", "OfflineOp", "OfflinePipeline",
    "OnlinePipeline", "Operator", "OutputOp", "PreprocessConfig", "UnsharpMask", "WhitePatch",
    "build_op", "load_offline_pipeline", "load_online_pipeline", "load_preprocess_config", "op_name",
    "op_params", "parse_preprocess_config", "seeded_shuffle",
]
