"""srgan: single-image super-resolution built around SRGAN."""
__version__ = "0.1.0"
