"""`srgan serve`: the web page (upload, pick model and scale, compare, download). A thin shell
over :mod:`srgan.web.app`."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("serve", help="web page to upscale images in a browser",
                                   description="Serve the upscaling web page (local assets only, works offline).")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    parser.add_argument("--model", action="append", metavar="MODEL",
                        help="model offered on the page; repeat for several (default: auto, which picks per upload; auto "
                        "and default run the installed network of each scale on the menu: x2 -> srresnet_x2)")
    parser.add_argument("--models-dir", metavar="DIR",
                        help="also offer every model file in DIR (.pth, .pt, .ckpt, .safetensors: srgan's and the "
                        "community's, e.g. ESRGAN, Real-ESRGAN, SwinIR, HAT); files that cannot be used are skipped")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N, mps (default: auto = CUDA > MPS > CPU)")
    parser.add_argument("--backend", choices=("torch", "onnxruntime"), default="torch")
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"), default="auto",
                        help="auto (default): bf16 on a CPU with native bf16 (AMX / AVX512-BF16) where the model passes the "
                        "quality guard (within 0.005 dB of fp32 on a probe image), fp32 elsewhere; bf16 runs "
                        "the network in bf16 end to end; fp16 is CUDA only")
    parser.add_argument("--tile", type=int, default=None, help="tile side in input pixels (default: 512)")
    parser.add_argument("--max-upload-mb", type=float, default=20.0, help="largest upload (default: 20 MB)")
    parser.add_argument("--max-pixels", type=int, default=2048 * 2048,
                        help="largest input image in pixels (default: 2048x2048)")
    parser.add_argument("--max-output-pixels", type=int, default=8192 * 8192,
                        help="largest result in pixels (default: 8192x8192)")
    parser.add_argument("--concurrency", type=int, default=1, help="images upscaled at once (default: 1)")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    import logging

    import uvicorn

    from srgan.web.app import WebConfig, create_app

    config = WebConfig(models=tuple(args.model or ["auto"]), max_upload_bytes=int(args.max_upload_mb * 1e6),
                       max_input_pixels=args.max_pixels, max_output_pixels=args.max_output_pixels,
                       max_concurrent=max(1, args.concurrency), device=args.device, backend=args.backend,
                       tile=args.tile, models_dir=args.models_dir, precision=args.precision)
    app = create_app(config)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        logging.getLogger(__name__).warning("listening on %s: anyone who can reach it can use it (no login)",
                                            args.host)
    print(f"srgan: serving on http://{args.host}:{args.port}/ (Ctrl+C to stop)")
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0
