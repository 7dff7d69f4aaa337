"""`srgan evaluate`: score models on benchmark folders, print the table, write results and a report."""

from __future__ import annotations

import argparse

EPILOG = """examples:
  srgan evaluate --model bicubic --data ../shared/data/benchmarks --scale 4
  srgan evaluate --model runs/exp/checkpoints/last.pt bicubic --data Set5 Set14 --out eval/ --report eval/report
  srgan evaluate --model default --perception 0 0.5 1 --data data/sample --report eval/report --run runs/exp
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate", help="score models (PSNR/SSIM as published) and write an HTML report",
        description="Score models on folders of HR images (LR made by MATLAB bicubic, area, or a realistic "
        "JPEG/noise/blur preset) or on a prepared "
        "dataset's test split, with PSNR/SSIM on Y as in the published tables.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="extend", nargs="+", required=True, metavar="MODEL",
                        help="weights file (.safetensors / checkpoint .pt, or a community .pth/.safetensors: ESRGAN, "
                        "Real-ESRGAN, SwinIR, HAT, ... via spandrel), shipped name (srresnet_x4, srgan_x4, "
                        "srresnet_x2, srresnet_x3, default: the clean network of --scale) or baseline (bicubic, "
                        "lanczos, nearest); repeat or list several")
    parser.add_argument("--data", action="extend", nargs="+", required=True, metavar="DIR",
                        help="folder of HR images, folder of benchmark folders, prepared dataset (test split), "
                        "or a standard name (Set5, Set14, BSD100, Urban100)")
    parser.add_argument("--scale", type=int, choices=(2, 3, 4), help="default: the models' scale, else 4")
    # Names checked by the evaluation (srgan.evaluation.datasets.EVAL_DEGRADATIONS), not here:
    # building the parser imports nothing.
    parser.add_argument("--degradation", metavar="NAME",
                        help="how LR images are made from HR: bicubic (MATLAB's, as in published tables; the "
                        "default, or a prepared dataset's own LR when not given), area, or a realistic preset "
                        "made the same on every run from (preset, image name): jpeg, noise_jpeg, blur_jpeg, "
                        "webp (held out: no training degradation uses it), realesrgan, or mixed (each image by one of jpeg, "
                        "noise_jpeg, blur_jpeg, realesrgan, drawn from its name; see README, Evaluation)")
    parser.add_argument("--out", metavar="DIR", help="write per_image.csv and summary.json here")
    parser.add_argument("--report", metavar="DIR", help="write the HTML report (index.html + images) here")
    parser.add_argument("--run", metavar="DIR", help="training run directory: add its curves (metrics.jsonl) "
                        "to the report")
    parser.add_argument("--perception", type=float, nargs="+", metavar="ALPHA",
                        help="for shipped models: interpolate srresnet_x4 (0) -> srgan_x4 (1); several values "
                        "give one model each")
    parser.add_argument("--self-ensemble", action="store_true",
                        help="also score each network with the x8 geometric self-ensemble (named NAME+, as "
                        "in EDSR's tables; 8x the compute)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N, mps (default: auto = CUDA > MPS > CPU)")
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"), default="auto",
                        help="the networks' precision, as srgan upscale runs them: " + "auto (default): bf16 on a CPU with native bf16 (AMX / AVX512-BF16) where the model passes the "
                        "quality guard (within 0.005 dB of fp32 on a probe image), fp32 elsewhere; bf16 runs "
                        "the network in bf16 end to end; fp16 is CUDA only")
    parser.add_argument("--tile", type=int, default=None, metavar="N",
                        help="networks run as srgan upscale runs them, in tiles of N input pixels (default: 512; "
                        "0 = whole image)")
    parser.add_argument("--crop-border", type=int, metavar="N", help="pixels ignored at each edge (default: scale)")
    parser.add_argument("--rgb", action="store_true", help="score on RGB instead of the Y channel")
    parser.add_argument("--vgg-weights", metavar="PATH", help="VGG16 ImageNet state dict for the perceptual "
                        "loss (default: torchvision's cache; skipped with a note when missing)")
    parser.add_argument("--no-perceptual", action="store_true", help="skip the VGG perceptual loss and LPIPS")
    parser.add_argument("--no-niqe", action="store_true",
                        help="skip the no-reference scores, NIQE and noise sigma (of every output and of HR: "
                        "about 0.05 s per image)")
    parser.add_argument("--max-images", type=int, metavar="N", help="evaluate at most N images per dataset")
    parser.add_argument("--report-images", type=int, default=16, metavar="N",
                        help="images per dataset shown in the report (default: 16)")
    parser.add_argument("--max-pixels", type=int, metavar="N",
                        help="refuse images declaring more pixels, before decoding (default: 16384x16384)")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from srgan.evaluation.evaluate import EvalConfig, evaluate, format_table

    summary = evaluate(EvalConfig(
        models=tuple(args.model), data=tuple(args.data), scale=args.scale, degradation=args.degradation,
        crop_border=args.crop_border, y_only=not args.rgb, perception=args.perception,
        self_ensemble=args.self_ensemble, device=args.device, precision=args.precision, tile=args.tile, perceptual=not args.no_perceptual,
        vgg_weights=args.vgg_weights, niqe=not args.no_niqe, max_images=args.max_images, max_pixels=args.max_pixels,
        out_dir=args.out, report_dir=args.report, run_dir=args.run, report_images=args.report_images))
    print(format_table(summary))
    if "report" in summary:
        print(f"report: {summary['report']}")
    return 0
