"""The web app behind ``srgan serve``: FastAPI, one HTML page, local assets only.

API:

* ``GET /`` — the page (``static/index.html`` + ``app.js`` + ``style.css``).
* ``GET /api/models`` — ``[{"name", "scale", "scales", "menu"}]`` of the models this server
  offers: the default scale, the network scales it runs (``auto`` and ``default``: every installed
  shipped scale, :func:`~srgan.models.factory.installed_scales`), and the page's scale menu
  (``[{"scale", "network"}]``: the network each output scale runs, then resized where they differ).
* ``POST /api/upscale?model=NAME&scale=S&filename=NAME`` — the request body *is* the image
  (``Content-Type: image/...``); the answer is the upscaled PNG (alpha and 16-bit kept), with
  ``X-Input-Size`` / ``X-Output-Size`` headers, or ``{"detail": "..."}`` with a 4xx status.
  ``auto`` and ``default`` at scale S run the network ``srgan upscale --outscale S`` runs: the
  installed one of that scale, else the closest above it (:func:`~srgan.models.factory.closest_scale`).

The body is streamed straight into the request's own temporary folder (a raw body, not
multipart, so no framework spools it anywhere else) and refused as soon as it passes the size
limit. The image's declared size is checked before decoding. Each request reads and writes only
its folder, named by the server (client file names are only echoed back, after checking), and
the folder is removed when the response is sent. Upscaling runs in worker threads on shared,
stateless :class:`~srgan.inference.upscaler.Upscaler` objects, ``max_concurrent`` at a time.
"""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
import tempfile
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).with_name("static")
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


#: Output scales the page's menu offers besides the networks' own (up to ``max_outscale``).
MENU_SCALES = (1, 2, 3, 4, 8)


@dataclass(frozen=True)
class ScaledModel:
    """One page entry that runs the shipped network of each scale (``auto``, ``default``): an
    upload at output scale S gets :meth:`for_scale`, as ``srgan upscale --outscale S`` picks."""

    networks: dict  # network scale -> Upscaler / AutoUpscaler
    scale: int = 4  # the page's default

    @property
    def scales(self) -> list[int]:
        return sorted(self.networks)

    def for_scale(self, outscale: float):
        from srgan.models.factory import closest_scale

        return self.networks[closest_scale(outscale, self.scales)]


def scale_menu(upscaler, max_outscale: float) -> list[dict]:
    """The page's scale menu for one model: each output scale and the network scale it runs."""
    from srgan.models.factory import closest_scale

    scales = getattr(upscaler, "scales", [upscaler.scale])
    wanted = sorted({*MENU_SCALES, *scales})
    return [{"scale": s, "network": closest_scale(s, scales)} for s in wanted if s <= max_outscale]


@dataclass(frozen=True)
class WebConfig:
    """Settings of one server (read-only once the app is built)."""

    models: tuple[str, ...] = ("auto",)
    max_upload_bytes: int = 20 * 1024 * 1024  # a large phone JPEG is ~10 MB
    max_input_pixels: int = 2048 * 2048  # x4 → 67 MP out: minutes on a CPU already
    max_output_pixels: int = 8192 * 8192
    max_outscale: float = 8.0
    max_concurrent: int = 1  # upscales at once; more requests wait their turn
    device: str = "auto"
    backend: str = "torch"
    tile: int | None = None  # None: the Upscaler's default (512); 0: whole image
    precision: str = "auto"  # the Upscaler's: auto = bf16 on a CPU with native bf16 where the guard passes
    temp_root: str | None = None  # parent of the per-request folders (default: the system's)
    models_dir: str | None = None  # every model file in it is offered too (community .pth/.safetensors, ours)


def create_app(config: WebConfig, upscalers: dict | None = None) -> FastAPI:
    """Build the app. ``upscalers`` (name → Upscaler) may be given ready-made (tests); otherwise
    every model is loaded now (:func:`load_upscalers`), so a bad model fails at start, not per request."""
    if upscalers is None:
        upscalers = load_upscalers(config)
    work_root = Path(tempfile.mkdtemp(prefix="srgan-serve-", dir=config.temp_root))
    gate = asyncio.Semaphore(config.max_concurrent)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        shutil.rmtree(work_root, ignore_errors=True)

    app = FastAPI(title="srgan", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.config, app.state.upscalers, app.state.work_root = config, upscalers, work_root

    @app.exception_handler(RequestValidationError)
    async def bad_parameter(request: Request, exc: RequestValidationError) -> JSONResponse:
        """A malformed parameter (``scale=abc``) gets one line, like every other refusal."""
        first = exc.errors()[0] if exc.errors() else {}
        name = ".".join(str(part) for part in first.get("loc", ())[1:]) or "request"
        return JSONResponse({"detail": f"bad {name}: {first.get('msg', 'invalid value')}"}, status_code=422)

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    @app.get("/api/models")
    def models() -> list[dict]:
        return [{"name": name, "scale": up.scale, "scales": getattr(up, "scales", [up.scale]),
                 "menu": scale_menu(up, config.max_outscale)} for name, up in upscalers.items()]

    @app.get("/api/limits")
    def limits() -> dict:
        return {"max_upload_bytes": config.max_upload_bytes, "max_input_pixels": config.max_input_pixels,
                "max_output_pixels": config.max_output_pixels, "max_outscale": config.max_outscale}

    @app.post("/api/upscale")
    async def upscale(request: Request, model: str | None = None, scale: float | None = None,
                      filename: str = "image") -> FileResponse:
        upscaler, outscale = check_request(request, upscalers, model, scale, config)
        stem = check_filename(filename)
        folder = Path(tempfile.mkdtemp(prefix="req-", dir=work_root))
        cleanup = BackgroundTask(shutil.rmtree, folder, ignore_errors=True)
        try:
            upload = folder / "upload"
            await receive_body(request, upload, config.max_upload_bytes)
            async with gate:
                result, info = await run_in_threadpool(run_upscale, upscaler, upload, folder / "result.png",
                                                       outscale, config)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return FileResponse(result, media_type="image/png", headers=result_headers(info), background=cleanup,
                            filename=f"{stem}_x{outscale:g}.png")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def result_headers(info: dict) -> dict[str, str]:
    """What the page shows beside a result: sizes, time and (auto) the model chosen and why."""
    headers = {"X-Input-Size": info["input"], "X-Output-Size": info["output"],
               "X-Seconds": f"{info['seconds']:.2f}", "Cache-Control": "no-store"}
    if info["model"]:
        headers["X-Model-Choice"] = info["model"]
    return headers


def check_request(request: Request, upscalers: dict, model: str | None, scale: float | None,
                  config: WebConfig) -> tuple[object, float]:
    """The upscaler and output scale an upload asks for, refused (4xx) before its body is read:
    unknown model, scale out of range, not an image, declared larger than the upload limit."""
    name = model or next(iter(upscalers))
    if name not in upscalers:
        raise HTTPException(400, f"unknown model {name!r}; choose one of {', '.join(upscalers)}")
    upscaler = upscalers[name]
    outscale = float(upscaler.scale if scale is None else scale)
    if not 0 < outscale <= config.max_outscale:
        raise HTTPException(400, f"scale must be in (0, {config.max_outscale:g}], not {outscale:g}")
    if hasattr(upscaler, "for_scale"):  # auto / default: the network of this scale
        upscaler = upscaler.for_scale(outscale)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if not content_type.startswith("image/"):
        raise HTTPException(415, f"send an image (Content-Type image/...), not {content_type or 'nothing'}")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > config.max_upload_bytes:
        raise HTTPException(413, too_big_message(int(declared), config.max_upload_bytes))
    return upscaler, outscale


def load_upscalers(config: WebConfig) -> dict:
    """Page label → Upscaler for ``config.models`` (a bad one stops the start) and the model files
    of ``config.models_dir`` (a bad one is skipped with a warning: a folder of downloads may hold
    anything, e.g. a denoiser or a file that would run code)."""
    from srgan.errors import SrganError
    from srgan.inference.upscaler import UpscaleConfig, Upscaler

    def load(spec: str, scale: int | None = None) -> Upscaler:
        from srgan.inference.auto import AutoUpscaler, runs_auto

        if runs_auto(spec, {"backend": config.backend}):  # per upload: clean, real-world or between
            return AutoUpscaler(scale=scale, device=config.device, tile=config.tile, precision=config.precision)
        return Upscaler(UpscaleConfig(spec, backend=config.backend, device=config.device, tile=config.tile,
                                      precision=config.precision, scale=scale))

    upscalers = {model_label(spec): load_scaled(spec, load) for spec in config.models}
    for path in model_files(config.models_dir, config.backend) if config.models_dir else []:
        label = model_label(str(path))
        label = path.name if label in upscalers else label
        try:
            upscalers[label] = load(str(path))
        except SrganError as exc:
            log.warning("--models-dir: skipped %s", exc)
    if not upscalers:
        raise SrganError(f"--models-dir {config.models_dir}: no model there could be loaded")
    return upscalers


def load_scaled(spec: str, load):
    """``auto`` / ``default`` with more than one installed shipped scale: a :class:`ScaledModel`
    of one network per scale; anything else: ``load(spec)``."""
    from srgan.models.factory import DEFAULT_SCALE, installed_scales

    scales = installed_scales() if spec in ("auto", "default") else []
    if len(scales) < 2:
        return load(spec)
    default = DEFAULT_SCALE if DEFAULT_SCALE in scales else max(scales)
    return ScaledModel({scale: load(spec, scale) for scale in scales}, scale=default)


def model_files(folder: str, backend: str = "torch") -> list[Path]:
    """The model files directly in ``folder`` (``.pth``, ``.pt``, ``.ckpt``, ``.safetensors``; and
    ``.onnx`` for the onnxruntime backend), by name."""
    from srgan.errors import SrganError
    from srgan.models.community import MODEL_SUFFIXES

    root = Path(folder)
    if not root.is_dir():
        raise SrganError(f"--models-dir {folder} is not a folder")
    suffixes = MODEL_SUFFIXES + ((".onnx",) if backend == "onnxruntime" else ())
    return sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in suffixes)


def model_label(spec: str) -> str:
    """What the page shows for a model: the shipped name or the file's stem."""
    suffixes = (".safetensors", ".pt", ".pth", ".ckpt", ".onnx")
    return Path(spec).stem if ("/" in spec or spec.lower().endswith(suffixes)) else spec


def check_filename(filename: str) -> str:
    """A safe stem for the download name; names with path parts are refused, not repaired."""
    if not filename or "/" in filename or "\\" in filename or ".." in filename or "\x00" in filename:
        raise HTTPException(400, f"bad file name {filename[:60]!r}: no folders or '..' allowed")
    stem = _SAFE_NAME.sub("_", Path(filename).stem)[:80].strip("._")
    return stem or "image"


def too_big_message(size: int, limit: int) -> str:
    return f"the upload is {size / 1e6:.1f} MB; the limit is {limit / 1e6:.1f} MB"


async def receive_body(request: Request, path: Path, limit: int) -> None:
    """Stream the request body into ``path``, refusing it (413) as soon as it passes ``limit``."""
    size = 0
    with open(path, "xb") as fh:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise HTTPException(413, too_big_message(size, limit) + " (or more)")
            fh.write(chunk)
    if size == 0:
        raise HTTPException(400, "empty upload")


def status_for(error: Exception) -> int:
    """The HTTP status of a refusal, by the error's type: too large 413, out of memory 503 (the
    server is short of memory, not the request wrong), anything else the user can fix 400."""
    from srgan.errors import ImageTooLarge, UpscaleOutOfMemory

    if isinstance(error, ImageTooLarge):
        return 413
    return 503 if isinstance(error, UpscaleOutOfMemory) else 400


def run_upscale(upscaler, upload: Path, result: Path, outscale: float, config: WebConfig) -> tuple[Path, dict]:
    """Decode, check the limits, upscale and write the PNG (runs in a worker thread)."""
    import numpy as np

    from srgan.errors import SrganError
    from srgan.inference.pixels import output_size
    from srgan.inference.png import PngWriter
    from srgan.utils.image import read_image

    start = time.perf_counter()
    try:
        decoded = read_image(upload, max_pixels=config.max_input_pixels)
    except SrganError as exc:
        raise HTTPException(status_for(exc), f"cannot use this image: {exc}") from None
    width, height = decoded.width, decoded.height
    out_w, out_h = output_size(width, height, outscale)
    if out_w * out_h > config.max_output_pixels:
        raise HTTPException(413, f"the result would be {out_w}x{out_h} = {out_w * out_h / 1e6:.0f} MP; the limit "
                                 f"is {config.max_output_pixels / 1e6:.0f} MP: pick a smaller scale")
    chosen = ""
    if hasattr(upscaler, "select"):  # auto: which network this upload gets, shown on the page
        upscaler, chosen = upscaler.select(decoded.pixels, upload)
    try:
        pixels = upscaler.upscale(decoded.pixels, outscale=outscale)
    except SrganError as exc:
        raise HTTPException(status_for(exc), str(exc)) from None
    bits = 16 if pixels.dtype == np.uint16 else 8
    with PngWriter(result, pixels.shape[1], pixels.shape[0], pixels.shape[2], bits,
                   icc_profile=decoded.icc_profile, compress_level=1) as writer:
        writer.write(pixels)
    info = {"input": f"{width}x{height}", "output": f"{pixels.shape[1]}x{pixels.shape[0]}",
            "seconds": time.perf_counter() - start, "model": chosen}
    log.info("upscaled %s -> %s in %.1fs", info["input"], info["output"], info["seconds"])
    return result, info
