"""srgan: single-image super-resolution built around SRGAN."""
__version__ = "0.1.0"


def __getattr__(name: str):
    # `srgan.upscale` imports torch on first use only, so `import srgan` (and `srgan --help`) stay light.
    if name == "upscale":
        from srgan.inference.api import upscale

        return upscale
    raise AttributeError(f"module 'srgan' has no attribute {name!r}")
