"""``infogan`` console script: ``train``, ``evaluate``, ``export``, ``data``, ``serve``, ``site``. Thin: parse, then
call the modules."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import signal
import sys
from typing import NoReturn


def _cmd_train(args: argparse.Namespace) -> int:
    from .config import check_once, dumps, load_config
    from .loop import Interrupted, train

    overrides = list(args.set or [])
    if args.data_dir:
        overrides.append(f"data.dir={json.dumps(args.data_dir)}")
    for key, val in (
        ("train.seed", args.seed),
        ("train.epochs", args.epochs),
        ("train.device", args.device),
        ("train.threads", args.threads),
        ("loss.lambda_categorical", args.lambda_),
        ("loss.lambda_continuous", args.lambda_),
    ):
        if val is not None:
            overrides.append(f"{key}={json.dumps(val)}")
    try:
        check_once(overrides)
        if args.resume:
            fixed = [
                name
                for name, val in (
                    ("a config", args.config),
                    ("--seed", args.seed),
                    ("--set", None if args.fork else args.set),
                    ("--lambda", args.lambda_),
                    ("--init-from", args.init_from),
                    ("--init-parts", args.init_parts != "all"),
                )
                if val
            ]
            if fixed:  # the run's resolved config lives in its checkpoint; only its length may change
                raise SystemExit(
                    f"infogan train: error: --resume continues the run's own config; {', '.join(fixed)} "
                    "cannot be given with it (--epochs may, to train a run longer; --device, --threads and "
                    "--data-dir may, to go on on another machine or after the data moved; --set may with --fork "
                    "NEW_DIR)"
                )
            ck = train(
                None,
                resume=args.resume,
                progress=not args.no_progress,  # type: ignore[arg-type]
                max_steps=args.max_steps,
                epochs=args.epochs,
                threads=args.threads,
                device=args.device,
                fork=args.fork,
                overrides=args.set,
                data_dir=args.data_dir,
            )
        else:
            if args.fork:
                raise SystemExit(
                    "infogan train: error: --fork copies a run to change its settings; give --resume RUN too"
                )
            if args.init_parts != "all" and not args.init_from:
                raise SystemExit(
                    "infogan train: error: --init-parts chooses what --init-from loads; give --init-from too"
                )
            if not args.config:
                raise SystemExit(
                    "infogan train: error: give a config (name in training/configs or a .toml path) or --resume RUN"
                )
            cfg = load_config(args.config, overrides)
            if int(os.environ.get("RANK", "0")) == 0:
                print(dumps(cfg))
            ck = train(
                cfg,
                runs_dir=args.runs_dir,
                progress=not args.no_progress,
                max_steps=args.max_steps,
                init_from=args.init_from,
                init_parts=args.init_parts,
            )
    except Interrupted as e:
        print(f"infogan train: {e}", file=sys.stderr)
        return (
            128 + e.signum
        )  # the shell's convention for "ended by a signal", so a script can tell a stop from a failure
    except KeyboardInterrupt:  # Ctrl-C before the first step (imports, data loading): nothing trained to save
        print("infogan train: stopped by SIGINT before the first step; nothing was trained", file=sys.stderr)
        return 128 + 2
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"checkpoint: {ck}")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from .evaluate_cmd import evaluate_checkpoint, evaluation_dir, summary
    from .stages import stage_printer

    result = evaluate_checkpoint(
        args.checkpoint,
        data_dir=args.data_dir,
        out_dir=args.out,
        figures=not args.no_figures,
        split=args.split,
        ema=not args.no_ema,
        progress=stage_printer(),  # minutes of work: a line per stage on stderr (stdout stays the result)
    )
    print(json.dumps(result, indent=2) if args.json else summary(result, evaluation_dir(args.checkpoint, args.out)))
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from .export import export_checkpoint
    from .stages import stage_printer

    command = shlex.join(["infogan", *sys.argv[1:]])
    folder = export_checkpoint(
        args.checkpoint,
        args.id,
        models_dir=args.models_dir,
        title=args.title,
        data_dir=args.data_dir,
        labels=args.label,
        command=command,
        weights=args.weights,
        compare_with=args.compare_with,
        split=args.split,
        force=args.force,
        progress=stage_printer(),
    )
    print(f"exported {folder}")
    return 0


def _cmd_data(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .data import DEFAULT_ROOT

    if args.dataset == "chairs3d":
        from .chairs3d import RENDERED_FILE, _check_strides, write_dataset
    else:
        from .dsprites import RENDERED_FILE, _check_strides, write_dataset

    out = Path(args.out) if args.out else DEFAULT_ROOT / args.dataset / RENDERED_FILE
    if out.is_dir() or (args.out and (args.out.endswith(("/", os.sep)) or out.suffix.lower() != ".npz")):
        # a folder, or a path meant as one ("data/" or "data", which did become a file without .npz, where the
        # loader's --data-dir never looked): the loader's file name inside it
        if out.exists() and not out.is_dir():
            raise SystemExit(
                f"infogan data: error: --out {out} is a file that is not an .npz; give a folder or a path ending "
                f"in .npz"
            )
        out = out / RENDERED_FILE
    try:
        # "" is not "no subset": an unset variable in --subset "$S" would start the full render (3 GB for dSprites)
        subset = [int(s) for s in args.subset.split(",")] if args.subset is not None else None
        _check_strides(subset)  # before the line that says rendering starts
    except ValueError as e:
        # the strides' own message without its "<set> subset:" and ", got ..." (the option's text is quoted here)
        text = str(e)
        what = (
            text.split("subset: ", 1)[1].rsplit(", got ", 1)[0]
            if "subset: " in text
            else ("whole numbers separated by commas, one stride per factor")
        )
        raise SystemExit(f"infogan data: error: --subset {args.subset!r}: {what}") from None
    from .stages import stage_printer

    # 10-20 s of rendering (and 3 GB for the full dSprites): say so first, on stderr (stdout stays the summary)
    stage_printer()(f"rendering {args.dataset}{' (subset ' + args.subset + ')' if subset else ''} into {out}")
    print(json.dumps(write_dataset(out, subset)))
    return 0


def _serve_checks(args: argparse.Namespace) -> None:
    """Everything that would otherwise fail as a traceback inside uvicorn, or after models load: one line each."""
    import socket

    if args.models_dir:
        if os.path.exists(args.models_dir) and not os.path.isdir(args.models_dir):
            raise SystemExit(f"infogan serve: error: --models-dir {args.models_dir} is a file, not a folder of models")
        os.environ["MODELS_DIR"] = args.models_dir
    try:
        family, _, _, _, address = socket.getaddrinfo(args.host, args.port, type=socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError) as exc:
        raise SystemExit(
            f"infogan serve: error: --host {args.host!r} is not an address or a known host name ({exc})"
        ) from None
    # a port in use (or below 1024 without the right) failed only after every model had loaded, as uvicorn's own
    # log line and exit status 3; bound and released here as uvicorn binds it (SO_REUSEADDR)
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise SystemExit(
                f"infogan serve: error: cannot listen on {args.host}:{args.port} ({exc.strerror or exc}); "
                "is another server running there? Give another --port"
            ) from None
    from backend.core.config import settings_or_exit

    settings = settings_or_exit("infogan serve")
    if settings.models_dir.exists() and not settings.models_dir.is_dir():
        raise SystemExit(f"infogan serve: error: MODELS_DIR {settings.models_dir} is a file, not a folder of models")
    if not settings.models_dir.exists():
        # an empty folder starts (with a warning; models may be exported into it and the server restarted), a
        # missing one is a typo: a page with nothing to show and no word of why
        source = "--models-dir" if args.models_dir else "MODELS_DIR"
        raise SystemExit(f"infogan serve: error: {source} {settings.models_dir} does not exist")
    from backend.core.device import cuda_or_exit

    cuda_or_exit("infogan serve", settings)  # DEVICE=cuda where CUDA cannot run: one line before uvicorn starts


def _cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    # WORKERS before the settings are read: each worker process gives its ONNX Runtime sessions cores / workers
    # intra-op threads (backend/core/config.py), so N workers do not oversubscribe the cores
    os.environ["WORKERS"] = str(args.workers)
    _serve_checks(args)
    # keep-alive 5 s (uvicorn's default, stated); connections stalled in their headers are closed after
    # HEADER_TIMEOUT_S by the protocol class, stalled bodies by BodyLimitMiddleware; h11's buffer for one
    # incomplete event is bounded at 64 KiB (headers) when h11 is the parser. The protocol class goes by import
    # path: worker processes (--workers > 1) are spawned and receive the config pickled.
    # proxy headers are uvicorn's default; they are believed from --forwarded-allow-ips (uvicorn's default: the
    # FORWARDED_ALLOW_IPS variable, else 127.0.0.1; the image passes '*' as it sits behind a proxy container)
    extra = {"forwarded_allow_ips": args.forwarded_allow_ips} if args.forwarded_allow_ips else {}
    uvicorn.run(
        "backend.main:app",
        host=args.host,
        port=args.port,
        http="backend.api.limits:HeaderTimeoutProtocol",
        timeout_keep_alive=5,
        h11_max_incomplete_event_size=64 * 1024,
        workers=args.workers,
        **extra,
    )
    return 0


def _cmd_site(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .site import build_site

    out = Path(args.out)
    ids = build_site(out, Path(args.models_dir) if args.models_dir else None)
    print(f"wrote {out}/ (index.html, static/, models.json, models/: {', '.join(ids)}); serve it from any static host")
    return 0


def _path(text: str) -> str:
    """A file or folder argument: an empty one (an unset shell variable, --out "$SITE") would mean the current
    folder, where a command then writes or reads without a word."""
    if not text.strip():
        raise argparse.ArgumentTypeError("is empty: give a file or folder path")
    return text


def _port(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number 1..65535, got {text!r}") from None
    if not 1 <= n <= 65535:
        raise argparse.ArgumentTypeError(f"must be 1..65535, got {n}")
    return n


def _workers(text: str) -> int:
    n = _positive_int(text)
    if n > 64:  # backend/core/config.py's bound on WORKERS, said here under the option's own name
        raise argparse.ArgumentTypeError(f"must be 1..64, got {n}")
    return n


def _positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {n}")
    return n


_SPLIT_HELP = (
    "split to evaluate on (default: the data set's evaluation split: test, or train for dsprites and chairs3d, which "
    "have one); a data set without it is an error, never a quiet fallback: give --split train to evaluate on the "
    "training images"
)


def build_parser() -> argparse.ArgumentParser:
    from spec.manifest import WEIGHT_FORMATS

    ap = argparse.ArgumentParser(prog="infogan", description="Train, evaluate, export and serve InfoGAN models.")
    sub = ap.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train from a config, or resume a run")
    t.add_argument(
        "config", nargs="?", help="config name in training/configs (mnist, fashion-mnist, ...) or a .toml path"
    )
    t.add_argument(
        "--data-dir",
        type=_path,
        help="folder holding the data set files (downloaded there if missing); may change on --resume, when the "
        "files moved",
    )
    t.add_argument("--seed", type=int)
    t.add_argument("--epochs", type=float)
    t.add_argument("--device", choices=["auto", "cpu", "cuda"])
    t.add_argument(
        "--threads",
        type=int,
        help="CPU threads for this process (0: torch's default); may change on --resume (then not bit-identical: "
        "sums run in another order)",
    )
    t.add_argument(
        "--lambda", dest="lambda_", type=float, help="set lambda for every code kind (0: plain-GAN baseline)"
    )
    t.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE", help="override any config value (repeatable)")
    t.add_argument("--runs-dir", type=_path, default="runs")
    t.add_argument(
        "--resume",
        type=_path,
        metavar="RUN_DIR_OR_CHECKPOINT",
        help="continue a killed run where it stopped (with --epochs: train a run longer)",
    )
    t.add_argument(
        "--fork",
        type=_path,
        metavar="NEW_RUN_DIR",
        help="with --resume: continue a copy of the run in a new folder, with --set changes to its loss, optimizer "
        "rates or train settings (the run itself is left as it is)",
    )
    t.add_argument(
        "--init-from",
        type=_path,
        metavar="RUN_DIR_OR_CHECKPOINT",
        help="start this new run from another run's trained networks (same latent and model), e.g. to fine-tune on "
        "another data set version; its step, schedule and history are the new run's own",
    )
    t.add_argument(
        "--init-parts",
        choices=["all", "D", "D-categorical"],
        default="all",
        help="with --init-from: 'D' loads only the discriminator with its Q and CR heads, so G starts fresh and may "
        "be another design; 'D-categorical' as D, but Q's outputs for the continuous codes start fresh (default: all)",
    )
    t.add_argument("--max-steps", type=_positive_int, help="stop after this many steps (smoke tests)")
    t.add_argument("--no-progress", action="store_true")
    t.set_defaults(fn=_cmd_train)

    e = sub.add_parser("evaluate", help="accuracy, NMI, L_I, label-free score and Fig. 2 traversals")
    e.add_argument("checkpoint", type=_path)
    e.add_argument("--data-dir", type=_path)
    e.add_argument(
        "--out", type=_path, help="folder for evaluation.json and figures (default: the checkpoint's folder)"
    )
    e.add_argument("--split", default=None, help=_SPLIT_HELP)
    e.add_argument("--no-figures", action="store_true")
    e.add_argument(
        "--no-ema",
        action="store_true",
        help="draw with the trained G, not the moving average of its weights the run kept (train.ema_half_life)",
    )
    e.add_argument("--json", action="store_true", help="print the whole result (evaluation.json) instead of a summary")
    e.set_defaults(fn=_cmd_evaluate)

    x = sub.add_parser("export", help="write models/<id>/ (generator.onnx, recognizer.onnx, manifest.json)")
    x.add_argument("checkpoint", type=_path)
    x.add_argument("--id", required=True)
    x.add_argument("--models-dir", type=_path, default="models")
    x.add_argument("--title")
    x.add_argument("--data-dir", type=_path)
    x.add_argument("--label", action="append", metavar="CODE=LABEL", help="human label for a code, e.g. c1=slant")
    x.add_argument(
        "--compare-with",
        metavar="ID",
        help="id of the model the page shows beside this one (e.g. its lambda = 0 baseline)",
    )
    x.add_argument("--split", default=None, help=_SPLIT_HELP)
    x.add_argument("--force", action="store_true", help="replace an existing models/<id>/ (refused without it)")
    x.add_argument(
        "--weights",
        choices=list(WEIGHT_FORMATS),
        default="fp32",
        help="stored weight format: fp16 halves the files, int8 (per-row, large FC layers) quarters "
        "them; results match fp32 arithmetic to rounding (one or two images take an exact integer path "
        "through the int8 weights) and the evaluation runs on the stored weights",
    )
    x.set_defaults(fn=_cmd_export)

    d = sub.add_parser(
        "data", help="write a data set file (dsprites: rendered from its definition; chairs3d: rendered 3D chairs)"
    )
    d.add_argument("dataset", choices=["dsprites", "chairs3d"])
    d.add_argument(
        "--out",
        type=_path,
        help="the .npz to write, or a folder for dsprites_rendered_64x64.npz / chairs3d_v3_64x64.npz "
        "(default: $INFOGAN_DATA/<dataset>/, else ~/.cache/infogan/<dataset>/, where the loader looks "
        "without --data-dir)",
    )
    d.add_argument(
        "--subset",
        metavar="S1,...",
        help="every S-th class of each factor: dsprites (color, shape, scale, "
        "orientation, posX, posY), e.g. 1,1,2,4,4,4; chairs3d (style, azimuth, elevation, light, width), "
        "e.g. 1,4,2,2,2",
    )
    d.set_defaults(fn=_cmd_data)

    s = sub.add_parser("serve", help="serve models/ with the explorer page")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=_port, default=8000)
    s.add_argument("--models-dir", type=_path)
    s.add_argument(
        "--forwarded-allow-ips",
        metavar="IPS",
        help="comma-separated proxy addresses whose X-Forwarded-* "
        "headers are believed ('*': any; default: $FORWARDED_ALLOW_IPS or 127.0.0.1)",
    )
    s.add_argument(
        "--workers",
        type=_workers,
        default=1,
        help="worker processes, 1..64, each with its own models and cores/workers ONNX Runtime threads (a "
        "one-image request is bound by Python, one core per process; memory grows N-fold)",
    )
    s.set_defaults(fn=_cmd_serve)

    w = sub.add_parser("site", help="write the explorer and the models as static files (no server needed)")
    w.add_argument("--out", type=_path, required=True, help="folder to write (created; must be empty)")
    w.add_argument("--models-dir", type=_path, help="model folders to ship (default: models/)")
    w.set_defaults(fn=_cmd_site)
    return ap


def _user_errors() -> tuple[type[BaseException], ...]:
    """The errors that are the user's input or environment. DataError and TrainingError are looked up only where
    their modules were imported (else none was raised): importing them would import torch, which `serve` and the
    service image do without."""
    errors: list[type[BaseException]] = [ValueError, OSError]
    for module, name in (("training.data", "DataError"), ("training.runtime", "TrainingError")):
        if module in sys.modules:
            errors.append(getattr(sys.modules[module], name))
    return tuple(errors)


# what a command stopped by SIGINT/SIGTERM leaves, for its one line ("train" says it itself; "serve" is uvicorn's)
STOP_OUTCOMES = {
    "export": "; no half-written model is left (models/ holds the old model or the new one)",
    "data": "; no half-written file is left",
    "site": "; nothing was written",
    "evaluate": "",
}


def main(argv: list[str] | None = None) -> None:
    from .signals import Stopped, stop_as_exception

    args = build_parser().parse_args(argv)
    try:
        with stop_as_exception() if args.command in STOP_OUTCOMES else contextlib.nullcontext():
            code = args.fn(args)
    except (KeyboardInterrupt, Stopped) as e:
        # minutes of work (a render, an evaluation, an export's check) stopped on purpose: its clean-ups ran on the
        # way out; one line and the shell's code for "ended by a signal" (128 + signal), as a stopped training run
        signum = e.signum if isinstance(e, Stopped) else signal.SIGINT
        outcome = STOP_OUTCOMES.get(args.command, "")
        print(f"infogan {args.command}: stopped by {signal.Signals(signum).name}{outcome}", file=sys.stderr)
        code = 128 + signum
    except _user_errors() as e:
        # the user's input or environment (a config value, a missing or foreign checkpoint, data that cannot be
        # read or downloaded, a folder that cannot be written or is a file): one line naming it, no traceback.
        # OSError's str() names the path ("[Errno 13] Permission denied: 'runs/00001-mnist-s0'")
        print(f"infogan {args.command}: error: {e}", file=sys.stderr)
        code = 1
    if args.command == "train" and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        _leave_rank(code)
    sys.exit(code)


def _leave_rank(code: int) -> NoReturn:
    """End a torchrun rank without the interpreter's teardown. DistributedDataParallel keeps the gloo process group
    alive after ``destroy_process_group`` (its two worker threads outlive every Python reference to the modules), so
    they still run while the interpreter finalises; a rank of the two-rank CPU test died there with SIGABRT
    ("terminate called without an active exception") after its run had finished, turning a finished run into a
    failed one for torchrun. Every file of the run is closed by now (the checkpoint, the metrics, the lock), and
    training registers no exit handlers; only the standard streams' buffers are left to write."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
