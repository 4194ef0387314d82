"""``livedroid bench``: where the time goes, measured workload by workload in one run.

Every figure comes from the same clip and model in the same process, so ratios are meaningful
on a noisy machine: each measurement is repeated and the median kept. Workloads are isolated on
frames decoded once into memory; the limit is what the cores could reach given each workload's
measured CPU cost per frame.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from livedroid.annotate import BoxAnnotator
from livedroid.codecs import DEFAULT_PRESET
from livedroid.detections import Detections, same_class_iou_matrix
from livedroid.detectors import backend_for, load_detector, load_detectors
from livedroid.detectors.base import Detector
from livedroid.errors import UserError
from livedroid.frames import Frame
from livedroid.machine_load import QUIET_SHARE, LoadWatch, describe
from livedroid.bench_loops import SUPERVISION_MISSING, opencv_loop, single_frame, supervision_available, supervision_loop
from livedroid.engine import EngineSettings, build_engine
from livedroid.sinks import VideoSink
from livedroid.sources import MemorySource, VideoSource
from livedroid.wording import plural


@dataclass
class Measurement:
    """One workload: frames per second (wall) and CPU seconds per frame (all threads), medians."""

    fps: float
    cpu_ms_per_frame: float
    runs: list[float]
    #: Size of the video the workload wrote (the last run), for speed against size.
    output_kb: int | None = None


@dataclass
class LiveMeasurement:
    seconds: float
    frames_captured: int
    frames_processed: int
    frames_dropped: int
    age_p50_ms: float
    age_p95_ms: float
    age_max_ms: float
    budget_ms: float  # two frame intervals plus one inference: the target for p95


def run_once(work: Callable[[], int]) -> tuple[float, float]:
    """Run ``work`` (it returns the frames it handled): (frames per second, CPU ms per frame)."""
    wall, cpu = time.perf_counter(), time.process_time()
    frames = work()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return frames / wall, 1000 * cpu / frames


def measure_rounds(plan: dict[str, Callable[[], int]], repeat: int) -> dict[str, Measurement]:
    """Each workload once per round, ``repeat`` rounds; the median of each workload's runs kept.

    Rounds rather than one workload's runs in a row: on a shared machine a burst of load then
    slows every workload of a round alike, and the ratios between workloads hold.
    """
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in plan}
    for round_number in range(1, repeat + 1):
        for name, work in plan.items():
            _say(f"round {round_number}/{repeat}: {name}")
            runs[name].append(run_once(work))
    return {
        name: Measurement(statistics.median(r for r, _ in done), statistics.median(c for _, c in done),
                          [round(r, 1) for r, _ in done])
        for name, done in runs.items()
    }


class Bench:
    """The measurements of ``livedroid bench``, each a method, sharing the decoded clip."""

    def __init__(
        self, clip: str, detectors: list[Detector], naive_detector: Detector, settings: EngineSettings, *,
        max_frames: int, workdir: Path, preset: str = DEFAULT_PRESET, versus: list[Detector] | None = None,
    ) -> None:
        batch = settings.batch
        self.clip = clip
        self.detectors = detectors
        self.detector = detectors[0]  # the isolated inference workload uses one
        self.naive_detector = naive_detector
        self.versus = versus or []
        self.batch = max(1, min(batch, self.detector.max_batch))
        self.versus_batch = max(1, min(batch, self.versus[0].max_batch)) if self.versus else 1
        self.max_frames = max_frames
        self.workdir = workdir
        self.preset = preset
        probe = VideoSource(clip, max_frames=max_frames)
        self.fps = probe.fps or 30.0
        self.frames = [f.image for f in probe.frames()]
        probe.close()
        if not self.frames:
            raise UserError(f"{clip}: no frames decoded")
        self.detections = self.detector.detect(self.frames[:1])  # warm-up, and a shape check
        if self.versus:
            self.versus[0].detect(self.frames[:1])
        #: the engine measured (``_motion_engine``: the same with ``--motion``)
        self.settings = settings
        self.selection = build_engine(self.settings, detectors).selection

    def _sink(self, name: str) -> VideoSink:
        return VideoSink(self.workdir / name, fps=self.fps, time_base=None, preset=self.preset, overwrite=True)

    def decode_only(self) -> int:
        source = VideoSource(self.clip, max_frames=self.max_frames)
        count = sum(1 for _frame in source.frames())
        source.close()
        return count

    def inference_only(self) -> int:
        self.detections = self._infer(self.detector, self.batch)
        return len(self.frames)

    def versus_inference_only(self) -> int:
        self._infer(self.versus[0], self.versus_batch)
        return len(self.frames)

    def _infer(self, detector: Detector, batch: int) -> list[Detections]:
        results: list[Detections] = []
        for start in range(0, len(self.frames), batch):
            results += detector.detect(self.frames[start : start + batch])
        return [self.selection.apply(d) for d in results]

    def write_only(self) -> int:
        annotator, sink = BoxAnnotator(), self._sink("write.mp4")
        for index, (image, detections) in enumerate(zip(self.frames, self.detections)):
            scene = annotator.annotate(image.copy(), detections)
            sink.write(Frame(scene, index), detections, scene)
        sink.close()
        return len(self.frames)

    def naive_loop(self) -> int:
        """read → infer → draw → write in one thread, as simple examples do it."""
        annotator, sink = BoxAnnotator(), self._sink("naive.mp4")
        source = VideoSource(self.clip, max_frames=self.max_frames)
        count = 0
        for frame in source.frames():
            detections = self.selection.apply(self.naive_detector.detect([frame.image])[0])
            scene = annotator.annotate(frame.image, detections)
            sink.write(frame, detections, scene)
            count += 1
        sink.close()
        source.close()
        return count

    def opencv(self) -> int:
        detect = single_frame(self.naive_detector, self.selection.apply)
        return opencv_loop(self.clip, self.workdir / "opencv.mp4", detect, self.max_frames)

    def supervision(self) -> int:
        detect = single_frame(self.naive_detector, self.selection.apply)
        return supervision_loop(self.clip, self.workdir / "supervision.mp4", detect, self.max_frames)

    def pipeline(self) -> int:
        return self._run_pipeline(self.detectors, self.batch, "pipeline.mp4")

    def versus_pipeline(self) -> int:
        return self._run_pipeline(self.versus, self.versus_batch, "versus.mp4")

    def _run_pipeline(self, detectors: list[Detector], batch: int, output: str) -> int:
        source = VideoSource(self.clip, max_frames=self.max_frames)
        summary = build_engine(self.settings, detectors).pipeline(source, [self._sink(output)], batch=batch,
                                                                 progress=False).run()
        source.close()
        return summary.frames_processed

    def motion(self) -> int:
        """The pipeline with ``--motion``: one gated interpreter on every core, as the CLI runs it."""
        engine = self._motion_engine()
        gated = engine.detectors[0]
        source = VideoSource(self.clip, max_frames=self.max_frames)
        summary = engine.pipeline(source, [self._sink("motion.mp4")], progress=False).run()
        source.close()
        self.motion_runs_per_frame = gated.calls / max(1, gated.frames)
        return summary.frames_processed

    def _motion_engine(self):
        """``run --motion``'s engine: one gated interpreter with every core."""
        return build_engine(replace(self.settings, motion=True), [self.naive_detector])

    def motion_agreement(self) -> tuple[float, int]:
        """The share of the ungated detections (same frame and class, IoU ≥ 0.5) the gate also
        reports, and how many boxes it reports that the ungated run does not (carried past an
        object's flicker, or found only in a crop)."""
        gated = self._motion_engine().detectors[0]
        kept = total = extra = 0
        for image, reference in zip(self.frames, self.detections):
            found = self.selection.apply(gated.detect([image])[0])
            same = same_class_iou_matrix(reference.xyxy, reference.class_ids, found.xyxy, found.class_ids) >= 0.5
            total += len(reference)
            kept += int(same.any(axis=1).sum())
            extra += int((~same.any(axis=0)).sum())
        return (kept / total if total else 1.0), extra

    def live(self, seconds: float) -> LiveMeasurement:
        source = MemorySource(self.frames, self.fps, live=True, seconds=seconds)
        pipeline = build_engine(self.settings, self.detectors).pipeline(source, [self._sink("live.mp4")],
                                                                        batch=1, progress=False)
        summary = pipeline.run()
        p50, p95 = summary.latency_ms or (0.0, 0.0)
        return LiveMeasurement(
            seconds=round(summary.seconds, 1),
            frames_captured=summary.frames_read,
            frames_processed=summary.frames_processed,
            frames_dropped=summary.frames_dropped,
            age_p50_ms=round(p50, 1),
            age_p95_ms=round(p95, 1),
            age_max_ms=round(1000 * max(pipeline.ages, default=0.0), 1),
            budget_ms=round(2000 / self.fps + summary.inference_ms, 1),
        )


def run_bench(
    clip: str,
    settings: EngineSettings,
    *,
    repeat: int,
    max_frames: int,
    live_seconds: float,
    preset: str = DEFAULT_PRESET,
    motion: bool = False,
    versus: Path | None = None,
) -> dict:
    """Every measurement, as a JSON-ready dict, of the engine ``settings`` describe (its model
    resolved to a path). ``motion``: also the engine with ``--motion``. ``versus``: another model
    (the same detector in another format or backend, say) whose inference and pipeline are
    measured in the same rounds."""
    model, backend, device = Path(settings.model), settings.backend, settings.device
    threads, batch, workers = settings.threads, settings.batch, settings.workers
    key = backend or backend_for(model)
    detectors = load_detectors(model, backend, workers=workers, threads=threads, batch=batch, device=device)
    versus_detectors = load_detectors(versus, workers=workers, threads=threads, batch=batch, device=device) if versus else None
    workers = len(detectors)
    detector = detectors[0]
    # The naive loop gets one interpreter with every core, its best setting (the TFLite Raspberry
    # Pi example runs all four of a Pi's cores).
    naive_detector = load_detector(model, backend, device=device, batch=batch,
                                   threads=os.cpu_count() if key in ("tflite", "onnx") else None)
    skipped = {} if supervision_available() else {"supervision": SUPERVISION_MISSING}
    with tempfile.TemporaryDirectory(prefix="livedroid-bench-") as folder:
        _say(f"decoding {max_frames} frames of {clip} into memory")
        bench = Bench(clip, detectors, naive_detector, settings, max_frames=max_frames, workdir=Path(folder),
                      preset=preset, versus=versus_detectors)
        watch = LoadWatch()
        workloads = _measure_workloads(bench, _plan(bench, motion), skipped, repeat, Path(folder))
        if live_seconds > 0:
            _say(f"live: {live_seconds:g} s at the clip's frame rate")
        live = bench.live(live_seconds) if live_seconds > 0 else None
        load = watch.stop()
        gate = _motion_gate(bench, workloads) if motion else None
    limit = _limit_fps(workloads, workers)
    return {
        "clip": clip,
        "model": str(model),
        "backend": detector.backend,
        "runtime": detector.runtime,
        "naive_runtime": naive_detector.runtime,
        "batch": bench.batch,
        "preset": preset,
        "workers": workers,
        "frames": len(bench.frames),
        "frame_size": list(bench.frames[0].shape[1::-1]),
        "cores": os.cpu_count() or 1,
        "machine_load": load.as_json(),
        "repeat": repeat,
        "workloads": {name: asdict(m) for name, m in workloads.items()},
        "limit_fps": round(limit, 1),
        "pipeline_vs_naive": round(workloads["pipeline"].fps / workloads["naive"].fps, 2),
        "pipeline_vs_opencv": round(workloads["pipeline"].fps / workloads["opencv"].fps, 2),
        "pipeline_vs_supervision": (
            round(workloads["pipeline"].fps / workloads["supervision"].fps, 2) if "supervision" in workloads else None
        ),
        "skipped": skipped,
        "pipeline_vs_limit": round(workloads["pipeline"].fps / limit, 2),
        "live": asdict(live) if live else None,
        "motion": gate,
        "versus": _versus(versus, bench, workloads) if versus else None,
    }


def _versus(model: Path, bench: Bench, workloads: dict) -> dict:
    """The other model's identity, and its frames/s against the model's: inference, pipeline."""
    return {
        "model": str(model),
        "backend": bench.versus[0].backend,
        "runtime": bench.versus[0].runtime,
        "batch": bench.versus_batch,
        "inference_ratio": round(workloads["versus_inference"].fps / workloads["inference"].fps, 2),
        "pipeline_ratio": round(workloads["versus_pipeline"].fps / workloads["pipeline"].fps, 2),
    }


def _plan(bench: Bench, motion: bool) -> dict[str, tuple[Callable[[], int], str | None]]:
    """name → (what is measured, the video it writes)."""
    plan: dict[str, tuple[Callable[[], int], str | None]] = {
        "decode": (bench.decode_only, None),
        "inference": (bench.inference_only, None),
        "annotate_encode": (bench.write_only, "write.mp4"),
        "naive": (bench.naive_loop, "naive.mp4"),
        "opencv": (bench.opencv, "opencv.mp4"),
        "supervision": (bench.supervision, "supervision.mp4"),
        "pipeline": (bench.pipeline, "pipeline.mp4"),
    }
    if motion:
        plan["motion"] = (bench.motion, "motion.mp4")
    if bench.versus:
        plan["versus_inference"] = (bench.versus_inference_only, None)
        plan["versus_pipeline"] = (bench.versus_pipeline, "versus.mp4")
    return plan


def _measure_workloads(bench: Bench, plan: dict, skipped: dict[str, str], repeat: int, folder: Path) -> dict:
    """Each planned workload measured over ``repeat`` interleaved rounds, with the size of the video it wrote."""
    for name in skipped:
        _say(f"{name}: skipped, {skipped[name]}")
    _say(f"{plural(repeat, 'round')} of {len(plan) - len(skipped)} workloads on {len(bench.frames)} frames")
    workloads = measure_rounds({name: work for name, (work, _) in plan.items() if name not in skipped}, repeat)
    for name, (_, output) in plan.items():
        if output and name in workloads:
            workloads[name].output_kb = round((folder / output).stat().st_size / 1024)
    return workloads


def _motion_gate(bench: Bench, workloads: dict) -> dict:
    """What the motion gate saves (model runs) and what it costs (detections kept against the ungated ones)."""
    _say("motion: detections kept against the ungated ones")
    kept, extra = bench.motion_agreement()
    return {
        "model_runs_per_frame": round(bench.motion_runs_per_frame, 2),
        "detections_kept": round(kept, 3),
        "extra_boxes": extra,
        "vs_pipeline": round(workloads["motion"].fps / workloads["pipeline"].fps, 2),
    }


def _limit_fps(workloads: dict, workers: int) -> float:
    """The pipeline's ceiling on this machine, from the workloads measured alone."""
    cores = os.cpu_count() or 1
    cpu_per_frame = sum(workloads[s].cpu_ms_per_frame for s in ("decode", "inference", "annotate_encode"))
    return min(
        1000 * cores / cpu_per_frame,  # all cores busy with the measured work
        workloads["decode"].fps,  # a workload is no faster in the pipeline than alone ...
        workloads["annotate_encode"].fps,
        workloads["inference"].fps * workers,  # ... inference at best once per worker
    )


def format_table(result: dict) -> str:
    rows = [f"{'workload':<18}{'frames/s':>10}{'CPU ms/frame':>14}{'video KB':>10}   runs   "
            f"(naive, opencv, supervision: {result['naive_runtime']})"]
    for name, workload in result["workloads"].items():
        size = "" if workload["output_kb"] is None else workload["output_kb"]
        rows.append(f"{name:<18}{workload['fps']:>10.1f}{workload['cpu_ms_per_frame']:>14.1f}{size:>10}   {workload['runs']}")
    for name, reason in result["skipped"].items():
        rows.append(f"{name:<18}{'skipped':>10}   {reason}")
    rows.append(f"{'limit':<18}{result['limit_fps']:>10.1f}   ({result['cores']} cores, measured CPU cost per workload)")
    ratios = [f"pipeline / {peer} = {result[f'pipeline_vs_{peer}']:.2f}"
              for peer in ("naive", "opencv", "supervision", "limit") if result[f"pipeline_vs_{peer}"] is not None]
    rows.append(_headline("   ".join(ratios), result["machine_load"]))
    gate = result["motion"]
    if gate:
        rows.append(f"motion: {gate['model_runs_per_frame']} model runs a frame, {100 * gate['detections_kept']:.1f} % "
                    f"of the ungated detections kept ({plural(gate['extra_boxes'], 'box', 'boxes')} they lack), "
                    f"{gate['vs_pipeline']:.2f}x the pipeline's frames/s")
    versus = result.get("versus")
    if versus:
        rows.append(f"versus: {versus['model']} ({versus['backend']}: {versus['runtime']}, batch {versus['batch']}): "
                    f"inference {versus['inference_ratio']:.2f}x, pipeline {versus['pipeline_ratio']:.2f}x the model's frames/s")
    live = result["live"]
    if live:
        rows.append(
            f"live ({live['seconds']} s at the clip's rate): frame age p50 {live['age_p50_ms']} ms, "
            f"p95 {live['age_p95_ms']} ms, max {live['age_max_ms']} ms (budget {live['budget_ms']} ms); "
            f"{live['frames_processed']} processed, {live['frames_dropped']} dropped"
        )
    header = (f"{result['clip']} ({result['frame_size'][0]}x{result['frame_size'][1]}, {result['frames']} frames) | "
              f"{result['model']} ({result['backend']}: {result['runtime']}, batch {result['batch']}, "
              f"{result['workers']} worker{'s' * (result['workers'] > 1)}) | x264 {result['preset']}")
    return "\n".join([header, *rows])


def _headline(ratios: str, load: dict) -> str:
    """The ratios, headlined only when they were taken on a quiet machine: under load they
    measure the other work as much as livedroid (two lines then, the verdict first)."""
    if load["quiet"] is False:
        return (f"UNDER LOAD: {describe(load)}, over {QUIET_SHARE:.0%} of the machine: no headline ratio; "
                f"rerun on a quiet machine to compare\nunder load, not comparable: {ratios}")
    return f"{ratios}\nmachine: {'quiet' if load['quiet'] else 'load unknown'}, {describe(load)}"


def _say(text: str) -> None:
    """What bench is measuring now, on stderr (the table goes to stdout)."""
    print(f"livedroid bench: {text}", file=sys.stderr, flush=True)


def write_json(result: dict, path: str | Path) -> None:
    Path(path).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
