"""Evaluation: benchmark-exact metrics, model comparison on datasets, and the HTML report.

* :mod:`srgan.evaluation.metrics`: PSNR, SSIM, MSE, MAE (numpy, and batched torch versions for
  training validation), the VGG perceptual loss and LPIPS when their weights are available.
* :mod:`srgan.evaluation.niqe`: NIQE, the no-reference score of ``srgan score`` (numpy/scipy).
* :mod:`srgan.evaluation.baselines` / :mod:`srgan.evaluation.upscalers`: the models compared.
* :mod:`srgan.evaluation.datasets`: what ``--data`` finds.
* :mod:`srgan.evaluation.evaluate`: :func:`evaluate_models`, the call behind ``srgan evaluate``.
* :mod:`srgan.evaluation.report`: the qualitative HTML report.

Only the numpy metrics are imported here; the rest (torch, matplotlib) loads on use.
"""

from srgan.evaluation.metrics import mae, mse, psnr, ssim

__all__ = ["evaluate_models", "mae", "mse", "psnr", "ssim"]


def evaluate_models(*args, **kwargs) -> dict:
    """See :func:`srgan.evaluation.evaluate.evaluate_models`."""
    from srgan.evaluation.evaluate import evaluate_models as run

    return run(*args, **kwargs)
