"""Exploratory data analysis of a super-resolution dataset: ``run_eda`` writes the HTML report.

Modules, one concern each: ``items`` (what to analyse), ``stats`` (intensity and colour),
``spectrum`` (spatial resolution), ``noise`` (noise sigma), ``analyse`` (per-image work and the
process pool), ``preview`` (pre-processing before/after), ``plots`` (figures), ``html`` (the
page) and ``report`` (``run_eda``: all of it in order).
"""

from srgan.data.eda.report import run_eda

__all__ = ["run_eda"]
