"""A faster forward pass for perturbation scoring: the Keras model converted once to LiteRT.

Why: SHAP and LIME score hundreds or thousands of perturbed copies of one image, so on a
real-size model the forward pass is nearly all of their time. Measured 2026-12-02 on this
2-core machine (shared with other jobs, so options were interleaved in one process and
compared per round), one batch of 50 float32 images at 224 x 224, random weights, seconds
(median; ratio = median of the per-round ratios to the compiled tf.function):

                                    MobileNetV2 (5 rounds)         ResNet50 (5 rounds)
  model(x, training=False)          2.93  1.51                     6.93  1.47
  model.predict                     2.28  1.12                     5.17  1.31
  tf.function (LoadedModel.forward) 1.88  1.00                     4.33  1.00
  tf.function + XLA jit_compile    24.0  13.7                      not run (far slower on MobileNetV2)
  LiteRT fp32, XNNPACK, 2 threads   0.61  0.45  dp 2e-6            4.15  0.96  dp 3e-5
  ONNX Runtime (tf2onnx), 2 threads 1.16  0.62  dp 1e-6            4.43  1.01  dp 3e-5
  LiteRT, float16 weights           0.61  0.42  dp 3e-3            (3 rounds) 0.94  dp 2e-2
  LiteRT, dynamic-range int8        1.00  0.56  dp 3e-2, top-1 90% (3 rounds) 0.33  dp 1.4e-1

(dp: max absolute probability difference from Keras on the batch.) LiteRT fp32 wins on the
depthwise-convolution MobileNet (2.2x the compiled Keras forward pass, 3.6x the plain call) and ties on
ResNet50, whose dense convolutions TensorFlow's oneDNN kernels already run well; reduced
precision moves probabilities far beyond the tolerance, so it is not used. Hence the
per-model speed check below: a model is scored by LiteRT only where it is measurably faster.

What this module guarantees:
- Only perturbation scoring uses it (`explainers.perturb.batched_probabilities`). The
  predictions shown to a user always come from the Keras model (`LoadedModel.forward`).
- The model is converted once per model file and runtime version, in a background thread
  started by the first scoring call (explanations use Keras meanwhile; `Scorer.wait` settles
  it first), and cached in the workspace under `cache/runtime/`,
  keyed by the model file's sha256 and RUNTIME_KEY. A later process loads the cached file.
- Conversion is checked: on a fixed random batch the converted model's probabilities must
  match the Keras model's within TOLERANCE (max absolute difference) with the same top
  class, and it must be MIN_SPEEDUP times faster than the Keras forward pass (SPEED_IMAGES
  images, best of 3); otherwise (or
  when conversion fails) scoring stays on Keras, with a one-sentence notice in
  `status().notice` (also logged). The verdict is cached too, so a refused model is not
  converted again.
- `WORKBENCH_RUNTIME=keras` turns it off; `status()` always says which runtime scores.
Image models of at least MIN_PIXELS only (smaller ones gained nothing); text models keep
Keras. Delete the workspace's `cache/runtime/` folder to convert and measure again.
"""
from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from foundation import config
from foundation.types import Modality

if TYPE_CHECKING:  # pragma: no cover
    from models.loaded import LoadedModel

log = logging.getLogger(__name__)

ENV_VAR = "WORKBENCH_RUNTIME"
KERAS = "keras"
LITERT = "litert"
CHOICES = ("auto", KERAS)
# Converted probabilities may differ from the Keras model's by at most this much (absolute).
TOLERANCE = 1e-4
# The converted model is kept only if it is at least this much faster than Keras on the check batch.
MIN_SPEEDUP = 1.1
CHECK_IMAGES = 8
SPEED_IMAGES = 32  # the check batch repeated: speed is compared on this many images (best of 3)
CHECK_SEED = 0
# Images per interpreter call. XNNPACK's time per image was flat from 1 to 64 images (MobileNetV2
# at 224, 2 cores), so a small call keeps the activation arena small however big the caller's batch.
SUB_BATCH = 16
# Smaller inputs keep Keras: on the 64 x 64 sample models LiteRT was no faster on 256 images (0.94-1.03x).
MIN_PIXELS = 96 * 96
CACHE_FOLDER = "runtime"
FORMAT = 1  # bump when the conversion recipe changes: old cache entries are then ignored


@dataclass(frozen=True)
class RuntimeStatus:
    """Which runtime scores perturbations for one model, and why."""

    runtime: str  # "litert" or "keras": what scores right now
    state: str  # "pending" (not used yet), "converting", "ready", "fallback" (refused or failed), "off"
    notice: str | None = None  # one sentence when scoring stays on Keras for a reason the user may want
    max_abs_difference: float | None = None  # converted vs Keras probabilities on the check batch
    speedup: float | None = None  # Keras time / converted time on the check batch
    source: str | None = None  # "converted" (this process) or "cache" (an earlier conversion)
    seconds: float | None = None  # time spent converting or loading the converted model
    reason: str | None = None  # why a model is not converted at all (text, small, no sha256)

    def describe(self) -> str:
        """One sentence for people (CLI, logs, the page)."""
        if self.runtime == LITERT:
            how = "converted now" if self.source == "converted" else "from the workspace cache"
            return (f"Perturbation scoring uses LiteRT (XNNPACK, float32; {how}), max probability difference "
                    f"{self.max_abs_difference:.1e} from Keras, {self.speedup:.1f}x faster on the check batch.")
        if self.state == "pending":
            return "Perturbation scoring has not started; it uses LiteRT once a conversion is accepted."
        if self.state == "converting":
            return "Perturbation scoring uses Keras while the LiteRT conversion runs in the background."
        if self.notice:
            return self.notice
        return f"Perturbation scoring uses Keras ({self.reason})." if self.reason else "Perturbation scoring uses Keras."


def requested_runtime() -> str:
    """`WORKBENCH_RUNTIME` ("auto" by default; "keras" turns conversion off)."""
    return (os.environ.get(ENV_VAR) or "auto").strip().lower()


def runtime_key(input_shape: tuple[int, ...]) -> str:
    """What a cached conversion depends on besides the model file: the converter's versions,
    this recipe's format and the input shape."""
    import keras
    import tensorflow as tf

    shape = "x".join(str(d) for d in input_shape)
    return f"litert-f{FORMAT}-tf{tf.__version__}-keras{keras.__version__}-{shape}"


# --- the scorer --------------------------------------------------------------------------------


class Scorer:
    """Probabilities (N x K float32) for prepared float32 image batches, on the converted model
    once it is accepted, else on `LoadedModel.forward`.

    The first call starts the conversion (or the load of a cached one) in a daemon thread and
    scores on Keras until it is ready: a first explanation never waits for a conversion (tens of
    seconds for a ResNet50). The two agree within TOLERANCE, so an explanation whose batches
    straddle the switch is the same to that tolerance. `wait()` settles it first, for callers
    that want every score from one runtime (benchmarks, tests).
    """

    def __init__(self, model: "LoadedModel") -> None:
        self._model = weakref.proxy(model)  # the model owns its scorer, not the other way round
        self._label = f"model {model.name} {model.version}"
        self._lock = threading.Lock()  # one interpreter: one call at a time
        self._start_lock = threading.Lock()
        self._started = False
        self._runner: Callable[[np.ndarray], np.ndarray] | None = None
        self._status = RuntimeStatus(runtime=KERAS, state="pending")
        self._done = threading.Event()

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        self.start(background=True)
        runner = self._runner
        if runner is None:
            return self._model.forward(batch)
        try:
            with self._lock:
                raw = runner(np.asarray(batch, dtype=np.float32))
        except Exception as exc:  # the interpreter failed on this batch: Keras from now on
            self._finish(_fallback(f"the LiteRT model failed on a batch ({_short(exc)})"))
            return self._model.forward(batch)
        return np.asarray(self._model.io.probabilities(raw), dtype=np.float32)

    def status(self) -> RuntimeStatus:
        return self._status

    def wait(self, timeout: float | None = None) -> RuntimeStatus:
        """Settle the runtime (converting now if nobody has started) and return its status."""
        self.start(background=False)
        self._done.wait(timeout)
        return self._status

    def start(self, background: bool = True) -> None:
        """Settle the runtime once: load the cached conversion, or convert and check (in a
        daemon thread when `background`)."""
        with self._start_lock:
            if self._started:
                return
            self._started = True
        requested, model = requested_runtime(), self._model
        if requested == KERAS:
            return self._finish(RuntimeStatus(KERAS, "off", notice=f"{ENV_VAR}=keras: perturbation scoring uses Keras."))
        if requested not in CHOICES:
            return self._finish(RuntimeStatus(KERAS, "off", notice=(
                f"{ENV_VAR}={requested!r} is not one of {', '.join(CHOICES)}; perturbation scoring uses Keras.")))
        try:
            reason = unconverted_reason(model)
        except Exception as exc:  # e.g. a manifest without an input size: Keras says so when it runs
            reason = f"its input size is unknown ({_short(exc)})"
        if reason:
            return self._finish(RuntimeStatus(KERAS, "off", notice=None, reason=reason))
        self._status = RuntimeStatus(KERAS, "converting")
        if background:
            threading.Thread(target=self._prepare, name=f"runtime-{model.name}", daemon=True).start()
        else:
            self._prepare()

    def _prepare(self) -> None:
        try:
            status, runner = prepare(self._model)
        except Exception as exc:  # never let a conversion problem break an explanation
            status, runner = _fallback(f"the LiteRT conversion failed ({_short(exc)})"), None
        self._finish(status, runner)

    def _finish(self, status: RuntimeStatus, runner: Callable[[np.ndarray], np.ndarray] | None = None) -> None:
        self._runner = runner if status.runtime == LITERT else None
        self._status = status
        self._done.set()
        if status.notice:  # a refused or failed conversion warns; a deliberate setting informs
            (log.warning if status.state == "fallback" else log.info)("%s: %s", self._label, status.notice)


_SCORERS: "weakref.WeakKeyDictionary[Any, Scorer]" = weakref.WeakKeyDictionary()
_SCORERS_LOCK = threading.Lock()


def scorer(model: "LoadedModel") -> Scorer:
    """The model's perturbation scorer (one per loaded model); its runtime is settled on first use."""
    with _SCORERS_LOCK:
        found = _SCORERS.get(model)
        if found is None:
            found = _SCORERS[model] = Scorer(model)
    return found


def prepare_in_background(model: "LoadedModel") -> Scorer:
    """Start settling the model's runtime in a daemon thread (e.g. when a page loads the model),
    so the first explanation finds the conversion done or under way."""
    found = scorer(model)
    found.start(background=True)
    return found


def status(model: "LoadedModel") -> RuntimeStatus:
    """Which runtime scores this model's perturbations ("pending" before the first use)."""
    return scorer(model).status()


def forget(model: "LoadedModel") -> None:
    """Drop the model's scorer (tests; the next `scorer` call starts again from the cache)."""
    with _SCORERS_LOCK:
        _SCORERS.pop(model, None)


def unconverted_reason(model: "LoadedModel") -> str | None:
    """Why this model keeps Keras without trying a conversion, or None."""
    if model.modality is not Modality.IMAGE:
        return "text models are scored by Keras"
    if not model.info.lineage.sha256:
        return "the manifest records no sha256 to key a converted copy on"
    height, width = model.image_size
    if height * width < MIN_PIXELS:
        return f"at {height} x {width} the Keras forward pass is already cheap"
    return None


# --- conversion, check and cache ---------------------------------------------------------------


def prepare(model: "LoadedModel") -> tuple[RuntimeStatus, Callable[[np.ndarray], np.ndarray] | None]:
    """Load the cached conversion or convert now; check it; return its status and runner."""
    started = time.perf_counter()
    shape = model_input_shape(model)
    digest = model.info.lineage.sha256
    folder = cache_dir(digest, shape) if digest else None
    verdict = _read_verdict(folder)
    if verdict is not None and not verdict.get("accepted"):
        return _fallback(verdict.get("reason") or "an earlier LiteRT conversion was refused", verdict), None
    if verdict is not None:
        try:
            runner = interpreter_runner(folder / "model.tflite", shape)
            return RuntimeStatus(LITERT, "ready", max_abs_difference=float(verdict["max_abs_difference"]),
                                 speedup=float(verdict["speedup"]), source="cache",
                                 seconds=time.perf_counter() - started), runner
        except Exception:  # an unreadable cache entry: convert again
            (folder / "verdict.json").unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="runtime-") as scratch:
        path = Path(scratch) / "model.tflite"
        try:
            convert(model, shape, path)
            runner = interpreter_runner(path, shape)
            result = check(model, runner, shape)
        except Exception as exc:
            reason = f"the LiteRT conversion failed ({_short(exc)})"
            _write_verdict(folder, {"accepted": False, "reason": reason})
            return _fallback(reason), None
        if result["reason"]:
            _write_verdict(folder, {"accepted": False, **result})
            return _fallback(result["reason"], result), None
        if folder is not None:
            _publish(path, folder / "model.tflite")
            runner = interpreter_runner(folder / "model.tflite", shape)
        _write_verdict(folder, {"accepted": True, **result})
    return RuntimeStatus(LITERT, "ready", max_abs_difference=result["max_abs_difference"],
                         speedup=result["speedup"], source="converted", seconds=time.perf_counter() - started), runner


def model_input_shape(model: "LoadedModel") -> tuple[int, int, int]:
    """H x W x C of the tensor the Keras model takes (channels: 3, or 1 for grey models)."""
    height, width = model.image_size
    return height, width, int(model.io.channels)


def cache_dir(digest: str, shape: tuple[int, ...]) -> Path:
    if not digest.isalnum():  # a sha256 in hex: never a path
        raise ValueError(f"not a sha256: {digest!r}")
    return config.workspace_subdir("cache") / CACHE_FOLDER / digest / runtime_key(shape)


def convert(model: "LoadedModel", shape: tuple[int, ...], path: Path) -> None:
    """The Keras model (raw outputs, inference mode) -> a float32 .tflite file at `path`.

    Keras's own LiteRT route (ExportArchive -> SavedModel -> TFLiteConverter), with the
    SavedModel written under the model's lock (it traces the Keras model) and the slow
    conversion outside it, so explanations on Keras keep running meanwhile. Built-in ops
    only: a model that needs TensorFlow ops the interpreter lacks fails here, not later.
    """
    import functools

    import keras
    import tensorflow as tf

    signature = [tf.TensorSpec((None, *shape), tf.float32)]
    with tempfile.TemporaryDirectory(prefix="savedmodel-") as saved:
        with model.lock:
            archive = keras.export.ExportArchive()
            archive.track(model.keras_model)
            archive.add_endpoint("serve", functools.partial(model.keras_model.__call__, training=False),
                                 input_signature=signature)
            archive.write_out(saved, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        blob = converter.convert()
    path.write_bytes(blob)


def _interpreter_class() -> Any:
    try:  # the maintained interpreter (tf.lite.Interpreter is deprecated)
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # pragma: no cover - depends on what is installed
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    return Interpreter


def _threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def interpreter_runner(path: Path, shape: tuple[int, ...], sub_batch: int = SUB_BATCH) -> Callable[[np.ndarray], np.ndarray]:
    """A function N x shape float32 -> the model's raw outputs, through one interpreter with
    the XNNPACK delegate, at most `sub_batch` images per call (a shorter last part resizes the
    input, which costs well under a millisecond). Not thread-safe: the Scorer serialises calls."""
    interpreter = _interpreter_class()(model_path=str(path), num_threads=_threads())
    inputs, outputs = interpreter.get_input_details(), interpreter.get_output_details()
    if len(inputs) != 1 or len(outputs) != 1:
        raise ValueError(f"expected one input and one output, got {len(inputs)} and {len(outputs)}")
    input_index, output_index = inputs[0]["index"], outputs[0]["index"]
    allocated = [0]

    def run(batch: np.ndarray) -> np.ndarray:
        if batch.shape[1:] != tuple(shape):
            raise ValueError(f"expected a batch of {shape}, got {batch.shape[1:]}")
        chunks = []
        for start in range(0, len(batch), sub_batch):
            part = np.ascontiguousarray(batch[start : start + sub_batch], dtype=np.float32)
            if len(part) != allocated[0]:
                interpreter.resize_tensor_input(input_index, [len(part), *shape])
                interpreter.allocate_tensors()
                allocated[0] = len(part)
            interpreter.set_tensor(input_index, part)
            interpreter.invoke()
            chunks.append(interpreter.get_tensor(output_index).copy())
        if not chunks:
            return np.zeros((0, *outputs[0]["shape"][1:]), dtype=np.float32)
        return np.concatenate(chunks, axis=0)

    return run


def check_batch(model: "LoadedModel") -> np.ndarray:
    """The fixed random batch a conversion is checked on: seeded uint8 images through the
    model's own preprocessing (`image_tensor`), so values are in the range the model reads."""
    height, width = model.image_size
    images = np.random.default_rng(CHECK_SEED).integers(0, 256, size=(CHECK_IMAGES, height, width, 3), dtype=np.uint8)
    return model.image_tensor(images)


def check(model: "LoadedModel", runner: Callable[[np.ndarray], np.ndarray], shape: tuple[int, ...]) -> dict[str, Any]:
    """Agreement and speed of the converted model against `model.forward` on the check batch;
    `reason` is None when it is accepted."""
    batch = check_batch(model)
    expected = model.forward(batch)
    got = np.asarray(model.io.probabilities(runner(batch)), dtype=np.float32)
    if got.shape != expected.shape:
        return {"reason": f"the LiteRT model's output {got.shape} differs from the Keras model's {expected.shape}",
                "max_abs_difference": None, "speedup": None}
    difference = float(np.max(np.abs(got - expected)))
    same_top = bool(np.array_equal(got.argmax(axis=1), expected.argmax(axis=1)))
    timing = np.concatenate([batch] * (SPEED_IMAGES // len(batch)))  # big enough that call overheads fade
    keras_s = min(_seconds(lambda: model.forward(timing)) for _ in range(3))
    ours_s = min(_seconds(lambda: runner(timing)) for _ in range(3))
    speedup = keras_s / ours_s if ours_s > 0 else float("inf")
    result = {"max_abs_difference": difference, "speedup": round(speedup, 3), "tolerance": TOLERANCE,
              "keras_s": keras_s, "litert_s": ours_s, "reason": None}
    if not np.isfinite(difference) or difference > TOLERANCE or not same_top:
        result["reason"] = (f"the LiteRT model's probabilities differ from the Keras model's by up to {difference:.1e} "
                            f"(tolerance {TOLERANCE:.0e}{'' if same_top else ', and a top class changed'})")
    elif speedup < MIN_SPEEDUP:
        result["reason"] = f"the LiteRT model is not faster than Keras for this model ({speedup:.2f}x)"
    return result


def _seconds(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def _fallback(reason: str, figures: dict[str, Any] | None = None) -> RuntimeStatus:
    figures = figures or {}
    return RuntimeStatus(KERAS, "fallback", notice=f"Perturbation scoring uses Keras: {reason}.",
                         max_abs_difference=figures.get("max_abs_difference"), speedup=figures.get("speedup"))


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{exc.__class__.__name__}: {text[0][:200]}" if text else exc.__class__.__name__


def _read_verdict(folder: Path | None) -> dict[str, Any] | None:
    if folder is None:
        return None
    try:
        verdict = json.loads((folder / "verdict.json").read_text())
    except (OSError, ValueError):
        return None
    if verdict.get("accepted") and not (folder / "model.tflite").is_file():
        return None
    return verdict


def _write_verdict(folder: Path | None, verdict: dict[str, Any]) -> None:
    if folder is not None:
        _atomic_write(folder / "verdict.json", json.dumps(verdict, indent=1).encode())


def _publish(source: Path, target: Path) -> None:
    _atomic_write(target, source.read_bytes())


def _atomic_write(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f".{target.name}-", dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


