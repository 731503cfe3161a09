"""The ``pst-yolo`` subcommands: one table of name -> Python function, keys (type, default, help), help text.

Each ``run_*`` function is a thin wrapper: it gets the parsed keys, calls the Python API named in its
command's ``api`` and prints what the API returns. The usage text and every ``pst-yolo CMD --help`` are
generated from this table (``pst_yolo.cli.help_text``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from functools import partial
from typing import Any, Callable, Union

from pst_yolo.cli.args import (
    CLIError,
    Key,
    count,
    device,
    distance,
    fraction,
    image_size,
    integer,
    non_negative,
    number,
    optional_int,
    seed,
    str_list,
    to_bool,
    topk_list,
    topk_value,
)


@dataclass(frozen=True)
class Command:
    """One subcommand. ``variants`` holds other key sets chosen by a ``task=`` word (e.g. ``task=classify``)."""

    name: str
    summary: str  # one line for `pst-yolo --help`
    api: str  # the Python function it wraps, shown in its help
    run: Callable[[dict], int]
    keys: tuple[Key, ...] = ()
    positional: Union[str, tuple[str, ...], None] = None  # leading bare words are these keys, in order
    example: str = ""
    variants: dict = field(default_factory=dict)  # task name -> Command
    task: str = "detect"

    @property
    def positionals(self) -> tuple[str, ...]:
        """The keys leading bare words stand for, in order."""
        return (self.positional,) if isinstance(self.positional, str) else tuple(self.positional or ())


# --------------------------------------------------------------------------------------------------
# Thin wrappers over the Python API
# --------------------------------------------------------------------------------------------------
def run_quickstart(opts: dict) -> int:
    from pst_yolo.eval.quickstart import run

    run(**opts)
    return 0


def run_configs(opts: dict) -> int:
    from pst_yolo.eval.tables import config_rows, config_table

    print(config_table(config_rows(**opts)))
    return 0


def _spec(spec_type: type, values: dict, base: Any = None) -> Any:
    """A dataset spec (``SynthSpec`` / ``ClassifySynthSpec``) from key values; its checks become CLI errors."""
    try:
        return replace(base, **values) if base is not None else spec_type(**values)
    except ValueError as e:
        raise CLIError(str(e)) from e


def run_synth(opts: dict) -> int:
    from pst_yolo.data.coco_map import MAP_FILE
    from pst_yolo.data.synth import SynthSpec, generate

    out, overwrite = opts.pop("out"), opts.pop("overwrite", False)
    data_yaml = generate(out, _spec(SynthSpec, opts), overwrite=overwrite)
    print(
        f"synthetic dataset written: {data_yaml} (COCO JSON in {data_yaml.parent / 'annotations'}, "
        f"mapping {data_yaml.parent / MAP_FILE})"
    )
    return 0


def run_synth_classify(opts: dict) -> int:
    from pst_yolo.data.synth_classify import ClassifySynthSpec, generate_classify

    out, overwrite = opts.pop("out"), opts.pop("overwrite", False)
    spec = _spec(ClassifySynthSpec, opts)
    path = generate_classify(out, spec, overwrite=overwrite)
    print(
        f"synthetic classification dataset written: {path} ({spec.classes} classes x {spec.train} train / "
        f"{spec.val} val images, {spec.imgsz} px); train with: yolo classify train model=yolo11n-cls-pst.yaml "
        f"data={path} imgsz={spec.imgsz}"
    )
    return 0


def run_synth_task(opts: dict, task: str) -> int:
    from pst_yolo.data.synth import SynthSpec
    from pst_yolo.data.synth_tasks import generate_task

    out, overwrite = opts.pop("out"), opts.pop("overwrite", False)
    spec = _spec(SynthSpec, opts)
    data_yaml = generate_task(out, task, spec, overwrite=overwrite)
    model = f"yolo11n-{'seg' if task == 'segment' else task}-pst.yaml"
    print(
        f"synthetic {task} dataset written: {data_yaml} (COCO JSON in {data_yaml.parent / 'annotations'}); train "
        f"with: yolo {task} train model={model} data={data_yaml} imgsz={spec.imgsz}"
    )
    return 0


SYNTH_SET_KEYS = ("train", "val", "synth_imgsz", "synth_seed", "classes")


def _run_bench(opts: dict, task: str) -> int:
    from pst_yolo.eval.bench import TASKS, bench

    given = [k for k in SYNTH_SET_KEYS if k in opts]
    if given:
        if "data" in opts:
            raise CLIError(
                f"{', '.join(k + '=' for k in given)} describe the generated dataset; they do not apply with data="
            )
        renamed = {"synth_imgsz": "imgsz", "synth_seed": "seed"}
        values = {renamed.get(k, k): opts.pop(k) for k in given}
        opts["synth"] = _spec(type(TASKS[task].main_synth), values, base=TASKS[task].main_synth)
    bench(task=task, **opts)
    return 0


def run_bench(opts: dict) -> int:
    return _run_bench(opts, "detect")


def run_bench_classify(opts: dict) -> int:
    return _run_bench(opts, "classify")


def run_bench_task(opts: dict, task: str) -> int:
    return _run_bench(opts, task)


def run_evaluate(opts: dict) -> int:
    from pst_yolo.eval.coco import evaluate

    evaluate(**opts)  # prints the COCOeval summary
    return 0


def run_deploy(opts: dict) -> int:
    from pst_yolo.eval.deploy import deploy

    deploy(**opts)  # prints the table
    return 0


def run_coco2yolo(opts: dict) -> int:
    from pst_yolo.data.coco2yolo import SPLITS, convert

    splits = {}
    for s in SPLITS:
        jsons, dirs = opts.pop(s, None), opts.pop(f"{s}_images", None)
        if jsons is None:
            if dirs is not None:
                raise CLIError(f"{s}_images= given without {s}= (the JSON)")
            continue
        if dirs is not None and len(dirs) != len(jsons):
            raise CLIError(
                f"{s}= lists {len(jsons)} JSON file(s) but {s}_images= {len(dirs)} folder(s); "
                "give one images folder per JSON, in the same order"
            )
        splits[s] = list(zip(jsons, dirs)) if dirs else list(jsons)
    renamed = {"skip": "skip_invalid", "verify": "verify_images"}  # short keys for convert()'s arguments
    convert(opts.pop("out"), **splits, **{renamed.get(k, k): v for k, v in opts.items()})
    return 0


def run_speed(opts: dict) -> int:
    from pst_yolo.eval.speed import speed

    print(speed(**opts).markdown)
    return 0


def run_compare(opts: dict) -> int:
    from pst_yolo.eval.compare import compare, markdown_table

    print(markdown_table(compare(**opts)))
    return 0


def run_demo(opts: dict) -> int:
    import sys

    from pst_yolo.viz.demo import run_demo as demo

    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # command line: no FFmpeg chatter around our one-line errors
    summary = demo(opts.pop("source"), opts.pop("model"), **opts)
    if not summary.ok:
        print("pst-yolo demo: error: no frame was processed", file=sys.stderr)
        return 1
    return 0


def run_app(opts: dict) -> int:
    from pst_yolo.viz.app import serve

    return serve(**opts)


def run_explain(opts: dict) -> int:
    from pst_yolo.viz.explain import explain

    if "image" in opts and "source" in opts:  # (one would be silently ignored)
        raise CLIError("give image= or source= (the same key), not both")
    image = opts.pop("image", None) or opts.pop("source", None)
    if image is None:
        raise CLIError("image= is required (an image file or a folder of images)")
    explain(image, opts.pop("model"), **opts)
    return 0


def run_convert(opts: dict) -> int:
    from pst_yolo.integration.authors import convert

    try:
        report = convert(**opts)
    except FileExistsError as e:  # (an OSError: main() reports ValueError/FileNotFoundError as bad input)
        raise CLIError(str(e)) from e
    print(report.summary())
    return 0


# The keys each `pst-yolo study` action reads (a key another action reads would be silently ignored here)
STUDY_ACTION_KEYS = {
    "run": ("cells", "project", "force", "jobs", "device", "train", "val", "synth_imgsz", "overwrite"),
    "list": ("cells", "project"),
    "report": ("project", "out", "overwrite"),
}
STUDY_ACTION_WHY = {
    "run": "a run writes its report into project=; out= is for `pst-yolo study report`",
    "list": "a list only reads the cells' result files",
    "report": "a report reads every finished cell and runs none",
}


def run_study(opts: dict) -> int:
    from pst_yolo.eval import study

    action = opts.pop("action", "run")
    if action not in STUDY_ACTION_KEYS:
        raise CLIError(f"study: the first word must be run, list or report, got {action!r}")
    ignored = [k for k in opts if k not in STUDY_ACTION_KEYS[action]]
    if ignored:
        raise CLIError(
            f"study {action} takes {', '.join(k + '=' for k in STUDY_ACTION_KEYS[action])}; "
            f"{', '.join(k + '=' for k in ignored)} would be ignored ({STUDY_ACTION_WHY[action]})"
        )
    if action == "list":
        print(study.study_status(opts.get("project", study.DEFAULT_PROJECT), opts.get("cells")))
    elif action == "report":
        print(f"written: {study.write_report(**opts)}")
    else:
        sizes = {k: opts.pop(k) for k in ("train", "val", "synth_imgsz") if k in opts}
        if sizes:  # another dataset than the cells' default, e.g. a tiny one to try the gpu cells on a CPU
            from pst_yolo.data.synth import SynthSpec
            from pst_yolo.eval.bench import DETECT

            gpu_only = {c.group for c in study.select(opts.get("cells"))} == {"gpu"}
            base = study.GPU_SYNTH if gpu_only else DETECT.main_synth
            values = {{"synth_imgsz": "imgsz"}.get(k, k): v for k, v in sizes.items()}
            opts["synth"] = _spec(SynthSpec, values, base=base)
        study.run_study(**opts)
    return 0


# --------------------------------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------------------------------
# What the help shows as each task's benchmark defaults: (models, epochs and batch on synthetic data, imgsz
# elsewhere), as in pst_yolo.eval.bench.TASKS (tests/cli/test_help.py compares them).
BENCH_DEFAULTS = {
    "detect": ("yolo11n.yaml,yolo11n-pst.yaml,yolo11n-pst-p4.yaml", 8, 16, 640),
    "classify": ("yolo11n-cls.yaml,yolo11n-cls-pst.yaml", 20, 32, 224),
    "segment": ("yolo11n-seg.yaml,yolo11n-seg-pst.yaml", 10, 16, 640),
    "pose": ("yolo11n-pose.yaml,yolo11n-pose-pst.yaml", 10, 16, 640),
    "obb": ("yolo11n-obb.yaml,yolo11n-obb-pst.yaml", 10, 16, 640),
}


JOBS_KEY = Key(
    "jobs",
    count,
    "cores / training threads",
    "trainings run at once, each in its own process (same results as jobs=1, one after the other)",
)


def _training_keys(task: str) -> tuple[Key, ...]:
    detect = task == "detect"
    models, epochs, batch, imgsz = BENCH_DEFAULTS[task]
    return (
        Key(
            "models",
            str_list,
            models,
            "comma-separated .yaml configs (trained) and/or .pt weights and exports (.onnx, *_openvino_model, "
            "...: evaluated as they are)",
        ),
        Key("topk", topk_list, "0,8", "k values at which PST models are evaluated"),
        Key("epochs", count, f"{epochs} (synthetic) / 100", "training epochs"),
        Key(
            "imgsz",
            image_size,
            f"the set's own / {imgsz}",
            "training and evaluation size (a .pt is evaluated at its own training size unless given)",
        ),
        Key("batch", count, f"{batch} (synthetic) / 16", "training batch"),
        Key("workers", non_negative, 0, "dataloader workers"),
        Key("seed", seed, 0, "training seed"),
        Key("device", device, "cpu", "cpu, 0, 0,1, ..."),
        Key("project", str, "runs/pst-bench", "parent of the run folder"),
        Key("name", str, "bench" if detect else task, "run folder name (numbered if it exists)"),
        Key("exist_ok", to_bool, False, "reuse the named run folder (if empty or an earlier pst-yolo run)"),
        Key("recipe", str, "fast (synthetic) / stock", "fast: the embedded set's recipe; stock: Ultralytics' defaults"),
        Key(
            "fine_train",
            str,
            "PST_FINE_TRAIN if set, else 0",
            "PST models: fine-aware training (N = the last N epochs, P in (0,1] = that share of batches)",
        ),
        Key("eval_batch", count, "1" if detect else "1 (synthetic) / batch", "evaluation batch (1: per-image latency)"),
        JOBS_KEY,
        Key(
            "precise_bn",
            non_negative,
            0,
            "also score each trained model with BatchNorm statistics re-estimated on this many train images (0: off)",
        ),
        Key("train", integer, None, "generated set: train images (no data= only)"),
        Key("val", integer, None, "generated set: val images (no data= only)"),
        Key("synth_imgsz", integer, None, "generated set: image size (no data= only)"),
        Key("synth_seed", integer, None, "generated set: seed (no data= only)"),
        PRECISION_KEY,
    )


OVERWRITE_KEY = Key(
    "overwrite",
    to_bool,
    False,
    "replace a dataset another command wrote, or write into a folder with other files (kept, never replaced)",
)


def _synth_detect_keys(out: str = "datasets/pst-synth") -> tuple[Key, ...]:
    from pst_yolo.data.synth import SynthSpec

    spec = SynthSpec()
    return (
        Key("out", str, out, "output folder (or the first bare word)"),
        *(
            Key(
                f.name,
                number if isinstance(getattr(spec, f.name), float) else integer,  # (the spec checks the ranges)
                getattr(spec, f.name),
                "per-split image count" if f.name in ("train", "val") else "",
            )
            for f in fields(SynthSpec)
        ),
        OVERWRITE_KEY,
    )


def _synth_classify_keys() -> tuple[Key, ...]:
    from pst_yolo.data.synth_classify import ClassifySynthSpec

    spec = ClassifySynthSpec()
    return (
        Key("out", str, "datasets/pst-synth-cls", "output folder (or the first bare word)"),
        *(
            Key(f.name, integer, getattr(spec, f.name), "images per class" if f.name in ("train", "val") else "")
            for f in fields(ClassifySynthSpec)
        ),
        OVERWRITE_KEY,
    )


TRAINED_SIZE = "the model's training size (640 for a .yaml)"  # as `yolo val` / `yolo predict` choose it
MODEL_OR_EXPORT = (
    ".pt, .yaml, or an export: .onnx, .torchscript, .mnn, ..., a *_openvino_model / *_ncnn_model folder, .xml"
)
# pst_yolo.eval.deploy.VARIANTS by name (the help lists them without importing torch; tests/eval/test_deploy.py
# compares the two)
DEPLOY_VARIANTS = (
    "pytorch",
    "onnx",
    "onnx-fp16",
    "onnx-int8",
    "openvino-fp32",
    "openvino",
    "openvino-fp16-ir",
    "openvino-int8",
    "ncnn",
    "ncnn-fp16",
    "litert",
    "litert-int8",
)
PRECISION_KEY = Key(
    "precision",
    str,
    "the runtime's (OpenVINO: bf16 on CPUs with AVX512-BF16/AMX)",
    "OpenVINO: fp32, bf16 or fp16 (INFERENCE_PRECISION_HINT); other runtimes: fp32 only",
)

PREDICT_KEYS = (
    Key("imgsz", image_size, TRAINED_SIZE, "inference size; a different one is used with a warning"),
    Key("conf", fraction, 0.25, "confidence threshold"),
    Key("iou", fraction, 0.7, "NMS IoU"),
    Key("max_det", count, 300, "detections per image"),
    Key("device", device, "cpu", "cpu, 0, ..."),
    Key("topk", topk_value, "the model's", "k of every PST layer"),
    Key("project", str, "runs/pst", "parent of the run folder"),
    Key("save_dir", str, None, "exact output folder (new, empty or an earlier pst-yolo run folder)"),
)


def build_commands() -> dict[str, Command]:
    """The command table (built on use: a few key lists are read from the dataclasses they describe)."""
    bench_detect = Command(
        "bench",
        "train/load models, official COCO AP at each k, results.md/csv/png (task=classify: top-1/top-5; "
        "task=segment|pose|obb: the task's mAP, + COCO mask AP for segment); with no arguments: the embedded main job",
        "pst_yolo.eval.bench.bench",
        run_bench,
        keys=(
            Key("data", str, None, "a pst-yolo synth / coco2yolo dataset (folder or data.yaml); none: generate one"),
            *_training_keys("detect"),
            Key("annotations", str, None, "score against this COCO JSON instead of the dataset's val split"),
            Key("images", str, None, "the folder the annotations' file names are relative to"),
        ),
        example="pst-yolo bench data=datasets/synth models=yolo11n.yaml,yolo11n-pst.yaml topk=0,8 epochs=8",
    )
    bench_classify = Command(
        "bench",
        "the classification benchmark: top-1/top-5 at each k",
        "pst_yolo.eval.bench.bench(task='classify')",
        run_bench_classify,
        task="classify",
        keys=(
            Key("data", str, None, "an ImageFolder root (train/<class>, val/<class>); none: generate one"),
            *_training_keys("classify"),
            Key("split", str, "val", "the split validated"),
            Key("classes", integer, None, "generated set: number of classes (no data= only)"),
        ),
        example="pst-yolo bench task=classify",
    )
    bench_tasks = {
        task: Command(
            "bench",
            f"the {task} benchmark: Ultralytics' {what} at each k",
            f"pst_yolo.eval.bench.bench(task='{task}')",
            partial(run_bench_task, task=task),
            task=task,
            keys=(
                Key(
                    "data",
                    str,
                    None,
                    f"a {task} data.yaml (or its folder), e.g. from pst-yolo synth task={task}; none: generate one",
                ),
                *_training_keys(task),
                Key("split", str, "val", "the split validated"),
                *(
                    (
                        Key(
                            "annotations",
                            str,
                            None,
                            "COCO JSON with masks for pycocotools mask AP (default: the "
                            "dataset's val JSON, if it has masks)",
                        ),
                        Key("images", str, None, "the folder the annotations' file names are relative to"),
                    )
                    if task == "segment"
                    else ()
                ),
            ),
            example=f"pst-yolo bench task={task}",
        )
        for task, what in (
            ("segment", "box and mask mAP, plus pycocotools mask AP (segm),"),
            ("pose", "box and keypoint (OKS) mAP"),
            ("obb", "rotated-box mAP"),
        )
    }
    synth_detect = Command(
        "synth",
        "write the synthetic detection set (YOLO + COCO formats); task=classify: an ImageFolder set; "
        "task=segment|pose|obb: masks, keypoints, rotated boxes",
        "pst_yolo.data.synth.generate",
        run_synth,
        keys=_synth_detect_keys(),
        positional="out",
        example="pst-yolo synth datasets/synth train=64 val=16 imgsz=128 seed=0",
    )
    synth_classify = Command(
        "synth",
        "write the synthetic classification set (ImageFolder)",
        "pst_yolo.data.synth_classify.generate_classify",
        run_synth_classify,
        keys=_synth_classify_keys(),
        positional="out",
        task="classify",
        example="pst-yolo synth task=classify datasets/pst-synth-cls classes=10",
    )
    synth_tasks = {
        task: Command(
            "synth",
            f"write the synthetic {task} set: the detection set's shapes with {what} (YOLO + COCO formats)",
            f"pst_yolo.data.synth_tasks.generate_task(task='{task}')",
            partial(run_synth_task, task=task),
            keys=_synth_detect_keys(f"datasets/pst-synth-{task}"),
            positional="out",
            task=task,
            example=f"pst-yolo synth task={task} datasets/pst-synth-{task} train=400 val=50 imgsz=128",
        )
        for task, what in (
            ("segment", "instance masks"),
            ("pose", "4 keypoints per object"),
            ("obb", "rotated boxes (shapes turned by random angles)"),
        )
    }
    commands = [
        Command(
            "quickstart",
            "build yolo11n-pst, print its summary, run it on Ultralytics' bundled images (no downloads)",
            "pst_yolo.eval.quickstart.run",
            run_quickstart,
            keys=(
                Key("model", str, "yolo11n-pst.yaml", "a PST config or checkpoint"),
                Key("imgsz", image_size, 640, "inference size"),
                Key("topk", topk_value, 8, "the fine k compared with k = 0"),
                Key("device", device, "cpu", "cpu, 0, ..."),
            ),
            example="pst-yolo quickstart imgsz=320",
        ),
        Command(
            "compare",
            "validate one model at several top-k: one table of mAP (or top-1/5) and ms/image per k",
            "pst_yolo.eval.compare.compare",
            run_compare,
            keys=(
                Key(
                    "model",
                    str,
                    None,
                    "a PST .pt (or .yaml), or its export (k fixed): " + MODEL_OR_EXPORT,
                    required=True,
                ),
                Key("data", str, None, "an Ultralytics data.yaml or ImageFolder", required=True),
                Key("topk", topk_list, "0,4,8,16 (an export: its k)", "k values"),
                Key("imgsz", image_size, TRAINED_SIZE, "validation size; a different one is used with a warning"),
                Key("batch", count, 16, "validation batch"),
                Key("device", device, None, "cpu, 0, ..."),
                Key("workers", non_negative, 2, "dataloader workers"),
                Key("split", str, "val", "split to validate"),
                Key("save_dir", str, None, "also write compare.md / compare.csv here"),
                PRECISION_KEY,
            ),
            example="pst-yolo compare model=best.pt data=coco8.yaml topk=0,4,8,16",
        ),
        Command(
            "demo",
            "live detection (window, or headless video) with k and the attention overlay",
            "pst_yolo.viz.demo.run_demo",
            run_demo,
            keys=(
                Key(
                    "source",
                    str,
                    None,
                    "webcam index (0), video, image, folder, or rtsp:// / http(s):// URL",
                    required=True,
                ),
                Key(
                    "model",
                    str,
                    None,
                    ".pt, an export (.onnx, *_openvino_model folder, ...: k fixed, no overlay), "
                    "or yolo11n-pst.yaml (random weights)",
                    required=True,
                ),
                Key("show", to_bool, "if a display exists", "open a window"),
                Key("save", to_bool, "when headless", "write the annotated video/images to the run folder"),
                *(k for k in PREDICT_KEYS if k.name != "project"),
                Key("overlay", to_bool, False, "start with the attention overlay on"),
                Key("overlay_alpha", fraction, 0.3, "heat-map opacity 0..1 (keys [ and ] change it)"),
                Key(
                    "realtime",
                    to_bool,
                    "in a window",
                    "play a video file at its own frame rate (False: as fast as processed)",
                ),
                Key("project", str, "runs/pst", "parent of the run folder"),
                Key("name", str, "demo", "run folder name (numbered)"),
                Key("max_frames", count, None, "stop after N frames"),
                Key("delay", count, 1000, "ms each image stays in the window"),
                Key("reconnect", non_negative, 3, "attempts when a stream drops"),
            ),
            example="pst-yolo demo source=0 model=best.pt   (keys: f coarse/fine, +/- k, v attention, "
            "[/] its opacity, space pause, s save, q quit)",
        ),
        Command(
            "app",
            "the live demo in the browser (Streamlit; needs the [app] extra): camera, upload, stream, sample",
            "pst_yolo.viz.app.serve",
            run_app,
            keys=(
                Key("host", str, "127.0.0.1", "address to serve on (0.0.0.0: every interface)"),
                Key("port", integer, 8501, "port to serve on"),
                Key("model", str, "yolo11n-pst.yaml", "the model the page starts with (.pt, an export, a .yaml)"),
                Key("source", str, None, "a stream URL or a file on this machine to start with (default: the sample)"),
                Key("imgsz", image_size, 640, "inference size"),
                Key("conf", fraction, 0.25, "confidence threshold the page starts with"),
                Key("topk", topk_value, None, "k the page starts with (PyTorch PST models)"),
                Key("device", device, "cpu", "cpu, 0, ..."),
                Key("max_frames", count, None, "frames per play (default: until the source ends)"),
            ),
            example='pip install "pst-yolo[app]"; pst-yolo app model=best.pt   (then open http://127.0.0.1:8501)',
        ),
        Command(
            "explain",
            "what the fine branch looks at: one PNG per image, a panel per PST layer",
            "pst_yolo.viz.explain.explain",
            run_explain,
            keys=(
                Key("image", str, None, "an image file or a folder of images"),
                Key("source", str, None, "same as image="),
                Key("model", str, None, ".pt or a PST .yaml (random weights); not .onnx", required=True),
                *(k for k in PREDICT_KEYS if k.name != "project"),
                Key("project", str, "runs/pst", "parent of the run folder"),
                Key("name", str, "explain", "run folder name (numbered)"),
                Key("out", str, None, "exact PNG path (one image)"),
                Key("max_side", count, 640, "longest side of each panel"),
                Key("seed", seed, None, "seed torch first: a random-weights .yaml gives the same picture"),
                Key("overwrite", to_bool, False, "replace an existing out= file"),
            ),
            example="pst-yolo explain image=bus.jpg model=best.pt",
        ),
        Command(
            "configs",
            "params and GFLOPs of every shipped PST config next to its stock twin",
            "pst_yolo.eval.tables.config_rows",
            run_configs,
            keys=(
                Key("imgsz", image_size, "640 detect / 224 classify", "image size of the GFLOPs count"),
                Key("nc", count, "the YAML's", "number of classes"),
            ),
            example="pst-yolo configs imgsz=640",
        ),
        replace(synth_detect, variants={"classify": synth_classify, **synth_tasks}),
        replace(bench_detect, variants={"classify": bench_classify, **bench_tasks}),
        Command(
            "evaluate",
            "official pycocotools AP of one model on any COCO-format dataset",
            "pst_yolo.eval.coco.evaluate",
            run_evaluate,
            keys=(
                Key("model", str, None, MODEL_OR_EXPORT, required=True),
                Key("images", str, None, "folder the JSON's file names are relative to", required=True),
                Key("annotations", str, None, "COCO instances JSON", required=True),
                Key("topk", optional_int, "the model's", "k of every PST layer (none: the model's)"),
                Key("imgsz", image_size, TRAINED_SIZE, "inference size; a different one is used with a warning"),
                Key("batch", count, 16, "images per forward pass"),
                Key("conf", fraction, 0.001, "confidence threshold (COCO protocol)"),
                Key("iou", fraction, 0.7, "NMS IoU"),
                Key("max_det", count, 100, "detections per image"),
                Key("device", device, None, "cpu, 0, ..."),
                Key("class_map", str, None, "coco_map.json of the dataset (class index -> category id)"),
                Key("save", str, "runs/pst-coco/<model>_k<k>_detections.json", "detections JSON path"),
                PRECISION_KEY,
            ),
            example="pst-yolo evaluate model=best.pt annotations=instances_val2017.json images=val2017 topk=8",
        ),
        Command(
            "deploy",
            "what deploying costs: COCO AP of trained .pt models per export format x precision, and the drop from "
            "PyTorch fp32",
            "pst_yolo.eval.deploy.deploy",
            run_deploy,
            keys=(
                Key("models", str_list, None, "comma-separated trained .pt checkpoints (stock and PST)", required=True),
                Key("data", str, None, "a pst-yolo synth / coco2yolo dataset (folder or data.yaml): its val COCO JSON"),
                Key("annotations", str, None, "or: a COCO instances JSON ..."),
                Key("images", str, None, "... and the folder its file names are relative to"),
                Key("topk", topk_list, "0,8", "k values of PST models (each exported at each k)"),
                Key(
                    "variants",
                    str_list,
                    "all: " + ",".join(v for v in DEPLOY_VARIANTS),
                    "format x precision variants to run (PyTorch fp32, the reference, always runs)",
                ),
                Key("imgsz", image_size, TRAINED_SIZE, "export and inference size"),
                Key("batch", count, 1, "images per forward pass (1: per-image latency)"),
                Key("calibrate", str, "train", "split of data= calibrating INT8: train, or val (Ultralytics' default)"),
                Key("seed", seed, 0, "order of the INT8 calibration images (the same for every model of a run)"),
                Key("project", str, "runs/pst-deploy", "parent of the run folder"),
                Key("name", str, "deploy", "run folder name (numbered if it exists)"),
            ),
            example="pst-yolo deploy models=runs/stock/weights/best.pt,runs/pst/weights/best.pt data=datasets/synth",
        ),
        Command(
            "coco2yolo",
            "COCO instances JSON(s) + images -> Ultralytics dataset and class/category mapping",
            "pst_yolo.data.coco2yolo.convert",
            run_coco2yolo,
            positional="out",
            keys=(
                Key("out", str, None, "output folder (or the first bare word)", required=True),
                Key("train", str_list, None, "train JSON(s), comma-separated"),
                Key("val", str_list, None, "val JSON(s), comma-separated", required=True),
                Key("test", str_list, None, "test JSON(s)"),
                Key("train_images", str_list, "found the COCO way", "images folder per train JSON"),
                Key("val_images", str_list, "found the COCO way", "images folder per val JSON"),
                Key("test_images", str_list, "found the COCO way", "images folder per test JSON"),
                Key("mode", str, "symlink", "symlink, hardlink or copy the images"),
                Key("skip", to_bool, False, "drop broken images instead of refusing (counted)"),
                Key(
                    "overwrite",
                    to_bool,
                    False,
                    "replace an earlier conversion in out= (only the files it wrote), or write into a folder with "
                    "other files (kept, never replaced)",
                ),
                Key("verify", to_bool, True, "open every image to check its size"),
                Key("tolerance", distance, 1.0, "pixels a box may run past the border"),
            ),
            example="pst-yolo coco2yolo out=datasets/coco val=annotations/instances_val2017.json val_images=val2017",
        ),
        Command(
            "speed",
            "latency / memory / GFLOPs of models next to the first one",
            "pst_yolo.eval.speed.speed",
            run_speed,
            keys=(
                Key("models", str_list, "yolo11n.yaml,yolo11n-pst.yaml", "configs or checkpoints"),
                Key("imgsz", image_size, "640 (320 with train_step)", "input size"),
                Key("batch", count, "1 (8 with train_step)", "batch"),
                Key("threads", count, 2, "CPU threads"),
                Key(
                    "runtime",
                    str_list,
                    "torch,onnx",
                    "torch, onnx, onnx-mha; exported by Ultralytics, CPU: openvino, ncnn, mnn, executorch, "
                    "torchscript, litert",
                ),
                Key("topk", topk_list, "0,8", "k values of PST models"),
                Key("device", device, "cpu", "cpu, 0, ..."),
                Key("half", to_bool, False, "fp16 (CUDA)"),
                Key("runs", count, 20, "timed rounds"),
                Key("warmup", non_negative, 5, "warm-up rounds"),
                Key("train_step", to_bool, False, "time a training step"),
                Key("memory", to_bool, True, "measure peak memory"),
                Key("flops", to_bool, True, "count GFLOPs"),
                Key("opset", count, None, "ONNX opset"),
                Key("project", str, "runs/speed", "parent of the run folder"),
                Key("name", str, "exp", "run folder name"),
            ),
            example="pst-yolo speed models=yolo11n.yaml,yolo11n-pst.yaml runtime=torch,onnx topk=0,8",
        ),
        Command(
            "study",
            "does PST help? a resumable grid of training runs (seeds, fine-aware, layers, recipe, curves) + report",
            "pst_yolo.eval.study.run_study",
            run_study,
            positional="action",
            keys=(
                Key(
                    "action",
                    str,
                    "run",
                    "run (pending cells, then the report), list (cell status: study_status) or report (write_report)",
                ),
                Key("cells", str_list, "all", "groups (noise,fine,layers,recipe,curves), id prefixes or cell ids"),
                Key("project", str, "runs/pst-study", "the study folder: cells/ (one JSON per cell), runs/, data/"),
                Key("force", to_bool, False, "rerun the selected cells even if they have results"),
                Key("out", str, "project=", "report: the folder for study.md, noise.png, curves.png"),
                Key(
                    "jobs",
                    count,
                    "cores / training threads",
                    "cells run at once, each in its own process (same results as jobs=1)",
                ),
                Key("device", device, "cpu", "where cells train and are scored: cpu, 0, ..."),
                Key(
                    "train", integer, None, "the generated set: train images (default: the main job's; gpu cells: 2000)"
                ),
                Key("val", integer, None, "the generated set: val images"),
                Key("synth_imgsz", integer, None, "the generated set: image size"),
                Key(
                    "overwrite",
                    to_bool,
                    False,
                    "replace report files pst-yolo did not write (or that were edited since it wrote them)",
                ),
            ),
            example="pst-yolo study cells=noise   # later: pst-yolo study report project=runs/pst-study out=docs/accuracy",
        ),
        Command(
            "convert",
            "the PST authors' released weights (checkpoints of their P2HCT fork) -> today's format, same weights",
            "pst_yolo.integration.authors.convert",
            run_convert,
            positional=("source", "out"),
            keys=(
                Key("source", str, None, "the authors' .pt (or the first bare word)", required=True),
                Key("out", str, None, "the .pt to write (or the second bare word)", required=True),
                Key("topk", topk_value, "PST_TOPK if set, else 8", "the k saved with it (0 = coarse only)"),
                Key("overwrite", to_bool, False, "replace an existing out="),
            ),
            example="pst-yolo convert source=their_best.pt out=yolo12n-pst-authors.pt",
        ),
    ]
    return {c.name: c for c in commands}


# Ultralytics' own modes and tasks, passed through to its command line (with two keys of ours)
STOCK_MODES = ("train", "val", "predict", "export", "track", "benchmark")
STOCK_TASKS = ("detect", "segment", "classify", "pose", "obb")
STOCK_KEYS = (
    Key("topk", str, "the checkpoint's (8 for new models)", "inference k of every PST layer (0 = coarse only)"),
    Key("fine_train", str, 0, "fine-aware training: N = the last N epochs, P in (0,1] = that share of batches"),
)
