"""The command line: ``python -m fashion_course {doctor,data,train,evaluate,export}``.

Every error a learner can cause ends in one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

__all__ = ["main"]


def _cmd_doctor(args) -> int:
    from .doctor import doctor_main

    return doctor_main()


def _cmd_data(args) -> int:
    from .data import find_data

    # download=None lets $FASHION_COURSE_NO_DOWNLOAD decide, as everywhere else
    source = find_data(args.root, download=False if args.no_download else None)
    print(source)
    print(f"torchvision: datasets.FashionMNIST(root={str(source.root)!r}, download=False)")
    return 0


def _cmd_train(args) -> int:
    from .distributed import launched_by_torchrun

    if launched_by_torchrun():  # `torchrun ... -m fashion_course train`: one of several ranks
        return _cmd_train_distributed(args)
    if args.backend or args.sync_bn or args.snapshot or args.train_images:
        raise ValueError("--backend, --sync-bn, --snapshot and --train-images are for training under "
                         "torchrun: torchrun --nproc-per-node 2 -m fashion_course train ...")
    import torch

    from .environment import choose_device, seed_everything
    from .export import export_onnx, onnx_logits, onnx_session, save_checkpoint
    from .loaders import in_memory_loaders
    from .training import RECIPES, evaluate, flip_tta_accuracy, train_recipe

    seed_everything(args.seed, threads=args.threads)
    device = choose_device(args.device)
    recipe = RECIPES[args.model]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    epochs = args.epochs or recipe.epochs
    print(f"Training the {args.model!r} recipe for {epochs} epochs on {device}")

    def report(epoch, history):
        print(
            f"epoch {epoch:2d}/{epochs}: train loss {history.train_loss[-1]:.4f}  "
            f"test loss {history.test_loss[-1]:.4f}  test accuracy "
            f"{history.test_accuracy[-1]:.2%}  ({history.seconds[-1]:.0f} s)",
            flush=True,
        )

    model, history = train_recipe(
        recipe, device=device, root=args.root, epochs=epochs, seed=args.seed, on_epoch=report
    )
    _, test_loader = in_memory_loaders(
        root=args.root, device=device, normalize=recipe.normalize, test_batch_size=1000
    )
    result = evaluate(model, test_loader)
    metrics = {"test_accuracy": result.accuracy, "train_seconds": history.seconds[-1]}
    if recipe.augment:  # trained on flipped images: a mirrored look at each test image helps
        metrics["flip_tta_accuracy"] = flip_tta_accuracy(model, test_loader)
    stem = args.name or ("model" if args.model == "mlp" else f"model_{args.model}")
    pth = save_checkpoint(out / f"{stem}.pth", model, epoch=epochs, metrics=metrics)
    onnx_path = export_onnx(model.cpu(), out / f"{stem}.onnx")
    X = test_loader.X.cpu()
    onnx_pred = torch.cat([
        onnx_logits(onnx_session(onnx_path), X[i : i + 1000]).argmax(1)
        for i in range(0, len(X), 1000)
    ])
    agree = (onnx_pred == result.predictions).float().mean().item()
    print(f"test accuracy: {result.accuracy:.2%} after {history.seconds[-1]:.0f} s of training")
    if "flip_tta_accuracy" in metrics:
        print(f"with flip test-time augmentation: {metrics['flip_tta_accuracy']:.2%}")
    print(f"saved {pth} and {onnx_path} (ONNX predictions agree on {agree:.2%} of the test set)")
    return 0 if agree == 1.0 else 1


def _cmd_train_distributed(args) -> int:
    """The ``train`` command on one rank of a torchrun group (taught in 10_distributed)."""
    from .distributed import (
        check_batch_split,
        choose_backend,
        print0,
        setup_distributed,
        teardown_distributed,
        train_distributed,
    )
    from .environment import choose_device, seed_everything
    from .training import RECIPES

    rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    try:
        # every check that can fail comes before the process group, so that no rank waits for one
        # that has already given up
        recipe = RECIPES[args.model]
        choose_backend(choose_device(args.device), args.backend)
        check_batch_split(recipe.batch_size, world_size)
        seed_everything(args.seed, threads=args.threads)
        ctx = setup_distributed(args.device, args.backend)
    except Exception as exc:
        if rank == 0:
            print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    try:
        return _train_ranks(args, ctx, recipe, train_distributed, print0)
    except Exception as exc:
        if rank == 0:  # the other ranks fail the same way, or are stopped by torchrun
            print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    finally:
        teardown_distributed()


def _train_ranks(args, ctx, recipe, train_distributed, print0) -> int:
    import torch
    import torch.distributed as dist

    from .export import export_onnx, onnx_logits, onnx_session, save_checkpoint
    from .loaders import in_memory_loaders
    from .training import evaluate

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    epochs = args.epochs or recipe.epochs
    stem = args.name or ("model" if args.model == "mlp" else f"model_{args.model}")
    snapshot = Path(args.snapshot) if args.snapshot else out / f"{stem}.snapshot.pt"
    restarts = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", 0))
    if restarts:
        print0(f"torchrun restarted the group (restart {restarts})")
    print0(f"Training the {args.model!r} recipe for {epochs} epochs on {ctx.world_size} processes "
           f"({ctx.backend} backend, {ctx.device.type}), batch {recipe.batch_size} = "
           f"{ctx.world_size} x {recipe.batch_size // ctx.world_size} per process")
    model, history = train_distributed(recipe, ctx, root=args.root, epochs=epochs, seed=args.seed,
                                       snapshot=snapshot, sync_bn=args.sync_bn,
                                       train_images=args.train_images, log=print0)
    if ctx.is_main:
        # one evaluation, one checkpoint and one ONNX file: rank 0 alone, on the plain model
        _, test_loader = in_memory_loaders(root=args.root, device=ctx.device,
                                           normalize=recipe.normalize, test_batch_size=1000)
        result = evaluate(model, test_loader)
        metrics = {"test_accuracy": result.accuracy, "train_seconds": history.seconds[-1],
                   "world_size": ctx.world_size}
        pth = save_checkpoint(out / f"{stem}.pth", model, epoch=epochs, metrics=metrics)
        onnx_path = export_onnx(model.cpu(), out / f"{stem}.onnx")
        X = test_loader.X.cpu()
        onnx_pred = torch.cat([onnx_logits(onnx_session(onnx_path), X[i : i + 1000]).argmax(1)
                               for i in range(0, len(X), 1000)])
        agree = (onnx_pred == result.predictions).float().mean().item()
        print0(f"test accuracy: {result.accuracy:.2%} after {history.seconds[-1]:.1f} s of training "
               f"on {ctx.world_size} processes")
        print0(f"saved {pth} and {onnx_path} (ONNX predictions agree on {agree:.2%} of the test set)")
    if dist.is_initialized():
        dist.barrier()  # the snapshot goes only when rank 0 has saved the results
    if ctx.is_main:
        snapshot.unlink(missing_ok=True)
        return 0 if agree == 1.0 else 1
    return 0


def _cmd_evaluate(args) -> int:
    from .data import load_tensors
    from .export import load_any

    if args.images is not None:
        return _evaluate_folder(args)
    loaded = load_any(Path(args.model))
    mean, std = loaded.normalization
    images, labels = load_tensors(False, root=args.root)
    X = ((images.float() / 255 - mean) / std).unsqueeze(1)
    predictions = loaded.logits_fn(X).argmax(1)
    accuracy = (predictions == labels).float().mean().item()
    print(f"{args.model}: test accuracy {accuracy:.2%} on {len(labels):,} images")
    return 0


def _evaluate_folder(args) -> int:
    """`evaluate MODEL --images FOLDER`: accuracy and confusion matrix on labelled photos."""
    import torch

    from .export import load_any
    from .images import labelled_images, prepare_image
    from .training import Evaluation

    loaded = load_any(Path(args.model))  # first: its classes decide which folders are valid
    if loaded.input_shape != (1, 28, 28):
        raise ValueError(
            f"{args.model} takes images of shape {loaded.input_shape}, but photos are prepared as "
            "(1, 28, 28) Fashion-MNIST-like images; evaluate it on your own tensors with "
            "fc.evaluate(model, loader) instead"
        )
    files = labelled_images(args.images, loaded.classes)
    prepared = [prepare_image(path, normalization=loaded.normalization) for path, _ in files]
    labels = torch.tensor([label for _, label in files])
    predictions = loaded.logits_fn(torch.stack([p.tensor for p in prepared])).argmax(1)
    n = len(loaded.classes)
    confusion = torch.bincount(labels * n + predictions, minlength=n * n).reshape(n, n)
    result = Evaluation(predictions, labels, confusion, loaded.classes)
    print(f"{args.model} on the {len(files)} labelled images in {args.images}")
    print(result.report())
    wrong = result.misclassified.tolist()
    if wrong:
        print("\nmistakes:")
        for i in wrong:
            print(f"  {files[i][0]}: {loaded.classes[labels[i]]} -> "
                  f"{loaded.classes[predictions[i]]}")
    return 0


def _cmd_predict(args) -> int:
    from .predict import classify_images, format_predictions

    predictions = classify_images(
        args.images, model=args.model, top=args.top, threshold=args.threshold
    )
    print(format_predictions(predictions, as_json=args.json))
    return 0


def _cmd_export(args) -> int:
    from .export import export_onnx, load_model

    source = Path(args.model)
    target = Path(args.output) if args.output else source.with_suffix(".onnx")
    model = load_model(source)
    export_onnx(model, target)
    print(f"wrote {target} (input 'images' of shape (batch, 1, 28, 28), output 'logits')")
    return 0


def _relative_out(out: str) -> str:
    """`` --out DIR`` for a non-default output folder inside the repository, else nothing."""
    repo = Path(__file__).resolve().parent.parent
    target = Path(out).resolve()
    if target == repo / "benchmarks" or not target.is_relative_to(repo):
        return ""
    return f" --out {target.relative_to(repo).as_posix()}"


def _cmd_bench(args) -> int:
    from .bench import run_bench, to_markdown
    from .environment import choose_device, seed_everything

    seed_everything(args.seed, threads=args.threads)
    device = choose_device(args.device)
    recipes = args.recipes.split(",") if args.recipes else None
    print(f"Benchmarking on {device}{' (smoke run)' if args.smoke else ''}; this takes "
          f"{'under a minute' if args.smoke else 'many minutes'}", flush=True)
    # the command as typed, minus the folders (they are this machine's, not the reader's)
    command = "python -m fashion_course bench" + "".join(
        f" --{name} {value}" for name, value in
        (("recipes", args.recipes), ("device", args.device), ("seed", args.seed or None),
         ("threads", args.threads)) if value is not None
    ) + (" --float32" if args.float32 else "") + (" --smoke" if args.smoke else "") + _relative_out(args.out)
    result = run_bench(args.out, smoke=args.smoke, device=device, root=args.root,
                       recipes=recipes, seed=args.seed, float32=args.float32, command=command,
                       log=lambda line: print(line, flush=True))
    print(to_markdown(result))
    print("wrote " + " and ".join(result["files"]))
    return 0


def build_parser() -> argparse.ArgumentParser:
    try:
        from .training import RECIPES

        models = [k for k in RECIPES if k != "older"]
    except ImportError:  # no working torch: only the doctor runs, and main() says so
        models = None

    parser = argparse.ArgumentParser(
        prog="python -m fashion_course",
        description="Helpers of the fashion_course PyTorch course on Fashion-MNIST.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("doctor", help="check Python, torch, torchvision, devices and data")
    p.set_defaults(func=_cmd_doctor)

    p = sub.add_parser("data", help="find, verify and lay out Fashion-MNIST; print its source")
    p.add_argument("--root", help="a folder holding the four Fashion-MNIST files")
    p.add_argument("--no-download", action="store_true", help="never try to download")
    p.set_defaults(func=_cmd_data)

    p = sub.add_parser("train", help="train a model, evaluate it, save .pth and .onnx")
    p.add_argument("--model", choices=models, default="mlp",
                   help="which recipe to train (default: mlp)")
    p.add_argument("--epochs", type=int, help="override the recipe's number of epochs")
    p.add_argument("--device", help="cpu, cuda, mps (default: the best available)")
    p.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "data"),
                   help="output folder (default: the repository's data/)")
    p.add_argument("--name", help="file name stem (default: model, or model_cnn)")
    p.add_argument("--root", help="a folder holding the four Fashion-MNIST files")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, help="CPU threads for torch (default: all)")
    p.add_argument("--backend", help="under torchrun: the process group's backend, gloo or nccl "
                   "(default: nccl on CUDA, else gloo)")
    p.add_argument("--sync-bn", action="store_true",
                   help="under torchrun on GPUs: batch-norm statistics over all processes' samples")
    p.add_argument("--snapshot", help="under torchrun: the per-epoch snapshot to resume from "
                   "(default: OUT/NAME.snapshot.pt, removed when the run has finished)")
    p.add_argument("--train-images", type=int, help="under torchrun: train on the first N training "
                   "images only (a quick look at the mechanism; the test set stays whole)")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("evaluate", help="test accuracy of a .pth or .onnx model")
    p.add_argument("model", help="path to a .pth checkpoint or .onnx file")
    p.add_argument("--root", help="a folder holding the four Fashion-MNIST files")
    p.add_argument("--images", metavar="FOLDER",
                   help="evaluate on your own labelled photos instead, laid out as "
                   "FOLDER/<class name>/*.png (e.g. FOLDER/ankle-boot/boot1.jpg)")
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("predict", help="classify photos of clothing (top-K, or unsure)")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="photos (PNG, JPEG, ...)")
    p.add_argument("--model", help="a .pth or .onnx model (default: data/model_cnn.pth, "
                   "else data/model.pth)")
    p.add_argument("--top", type=int, default=3, help="how many classes to list (default: 3)")
    p.add_argument("--threshold", type=float, default=0.5,
                   help="below this probability the answer is 'unsure' (default: 0.5)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=_cmd_predict)

    p = sub.add_parser("export", help="convert a .pth checkpoint to .onnx")
    p.add_argument("model", help="path to a .pth checkpoint")
    p.add_argument("-o", "--output", help="the .onnx file (default: beside the checkpoint)")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("bench", help="measure data loading, time to accuracy and inference latency")
    p.add_argument("--smoke", action="store_true", help="a CI-sized run in seconds (not real numbers)")
    p.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "benchmarks"),
                   help="output folder for results-<device>.json and .md (default: benchmarks/)")
    p.add_argument("--recipes", help="comma-separated recipes to train (default: older,mlp,cnn,"
                   "cnn_best; smoke: older,mlp,cnn)")
    p.add_argument("--device", help="cpu, cuda, mps (default: the best available)")
    p.add_argument("--root", help="a folder holding the four Fashion-MNIST files")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, help="CPU threads for torch (default: all)")
    p.add_argument("--float32", action="store_true",
                   help="train every recipe in float32, also where the CNN would take the bfloat16 "
                        "path (a CUDA GPU, or a CPU with AMX)")
    p.set_defaults(func=_cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "doctor":  # needs no torch: it is what reports a missing one
        return args.func(args)
    from . import TORCH_IMPORT_ERROR

    if TORCH_IMPORT_ERROR is not None:
        print(f"error: PyTorch does not import in this Python ({TORCH_IMPORT_ERROR}); install the "
              "course's requirements with `pip install -r requirements.txt`, then "
              "`python -m fashion_course doctor` checks the set-up", file=sys.stderr)
        return 2
    from .data import DataError
    from .export import CheckpointError, OnnxModelError
    from .images import ImageError

    start = time.perf_counter()
    try:
        return args.func(args)
    except (DataError, CheckpointError, OnnxModelError, ImageError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"interrupted after {time.perf_counter() - start:.0f} s; files already saved are "
              "intact", file=sys.stderr)
        return 130
