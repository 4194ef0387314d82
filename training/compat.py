"""Make the TensorFlow Object Detection API (PyPI ``tf-models-research-object-detection``
2.8.0.post1, written for TF 2.8) import and run on TensorFlow 2.20.

Import this module before anything from ``object_detection`` (``import livedroid.training.compat``); it
imports TensorFlow itself. Each fix below names the error it prevents; the errors were measured on
TF 2.20, Python 3.11.
"""

from __future__ import annotations

import ast
import functools
import importlib.abc
import importlib.machinery
import importlib.util
import logging
import os
import re
import sys
import threading
import types
import warnings
from contextlib import contextmanager

# Fix 1 - Keras 3: "module 'keras._tf_keras.keras.layers' has no attribute 'experimental'".
# The API is written for Keras 2; this makes tf.keras resolve to tf-keras. It only works when set
# before TensorFlow's first import, hence the check below.
if "tensorflow" in sys.modules and os.environ.get("TF_USE_LEGACY_KERAS") != "1":
    raise ImportError(
        "livedroid.training.compat must be imported before TensorFlow, or TF_USE_LEGACY_KERAS=1 set before it: "
        "TensorFlow was imported with Keras 3, which the Object Detection API cannot use"
    )
# (livedroid.training's __init__ sets it, and TensorFlow's C++ log level, before this runs.)

import tensorflow as tf  # noqa: E402  (after the environment variable, on purpose)

# Not a fix either: the API calls dozens of deprecated TF1 functions, each logging a warning; the
# SavedModel exporter logs through absl's Python logger ("WARNING:absl:Found untraced functions").
tf.get_logger().setLevel("ERROR")
logging.getLogger("absl").setLevel(logging.ERROR)
warnings.filterwarnings("ignore", message=".*set_learning_phase.*is deprecated", category=UserWarning)

#: An info or warning line of TensorFlow's C++ logging: absl's format ("W0000 00:00:1796667048.398622
#: 16632 tf_tfl_flatbuffer_helpers.cc:364] Ignored output_format."), its note that nobody
#: initialised it, and TSL's own ("2026-12-07 18:04:21.506922: I tensorflow/core/util/port.cc:153]
#: ..."), and the int8 quantizer's bare line ("fully_quantize: 0, inference_type: 6,
#: input_inference_type: UINT8, output_inference_type: FLOAT32"). Errors pass: a failed conversion
#: may have no other explanation.
_NATIVE_LOG = re.compile(
    rb"WARNING: All log messages before absl::InitializeLog\(\)"
    rb"|[IW]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [\w.+-]+:\d+\]"  # seconds since 1970 here
    rb"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IW] [\w/.+-]+:\d+\]"
    rb"|fully_quantize: \d+, inference_type: \d+, input_inference_type: \w+, output_inference_type: \w+"
)


@contextmanager
def native_logs_dropped():
    """Drop TensorFlow's C++ info and warning lines from stderr while the block runs; everything
    else written there (progress bars, Python's messages, errors) passes through at once.

    TF_CPP_MIN_LOG_LEVEL (set in livedroid.training before TensorFlow's import) quiets TSL's
    logging, but the TFLite converter logs through absl's C++ library, which nobody initialises,
    so it writes every line to stderr whatever the level; no Python call reaches it. The only
    handle left is the file descriptor."""
    sys.stderr.flush()
    read_end, write_end = os.pipe()
    terminal = os.dup(2)
    os.dup2(write_end, 2)
    os.close(write_end)
    forwarder = threading.Thread(target=_forward_without_native_logs, args=(read_end, terminal), daemon=True)
    forwarder.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(terminal, 2)  # closes the pipe's write end: the forwarder reads to its end and stops
        forwarder.join()
        os.close(terminal)


def _forward_without_native_logs(source: int, destination: int) -> None:
    """Copy ``source`` to ``destination`` line by line, cutting each line at a native log line's
    start. A partial line is held back only while it could still become one (it starts with a
    letter or digit); progress bars start with a carriage return and pass at once."""
    pending = b""
    while chunk := os.read(source, 1 << 16):
        *lines, pending = (pending + chunk).split(b"\n")
        kept = [_without_native_log(line + b"\n") for line in lines]
        if pending and not pending[:1].isalnum():
            kept.append(pending)
            pending = b""
        os.write(destination, b"".join(kept))
    os.write(destination, _without_native_log(pending))
    os.close(source)


def _without_native_log(line: bytes) -> bytes:
    found = _NATIVE_LOG.search(line)
    return line if found is None else line[: found.start()]


def _quiet_conversion(convert):
    @functools.wraps(convert)
    def quietly(*args, **kwargs):
        with native_logs_dropped():
            return convert(*args, **kwargs)

    return quietly


# Every TFLite conversion (and int8 calibration) runs through this method of the converters' base.
from tensorflow.lite.python import lite as _tflite  # noqa: E402

if not hasattr(_tflite.TFLiteConverterBase._convert_and_export_metrics, "__wrapped__"):
    _tflite.TFLiteConverterBase._convert_and_export_metrics = _quiet_conversion(
        _tflite.TFLiteConverterBase._convert_and_export_metrics
    )


class _RegeneratedProtoLoader(importlib.abc.Loader):
    """Fix 2 - old generated protos: "Descriptors cannot be created directly ... regenerated with
    protoc >= 3.19.0". Instead of running the API's old ``*_pb2.py`` code, build each module from
    the serialized descriptor embedded in it, as current protoc output does. This keeps protobuf's
    fast C backend (the pure-Python fallback makes export about twice as slow)."""

    def __init__(self, path: str):
        self.path = path

    def create_module(self, spec):
        return None  # the default module object

    def exec_module(self, module: types.ModuleType) -> None:
        from google.protobuf import descriptor_pool
        from google.protobuf.internal import builder

        tree = ast.parse(open(self.path, encoding="utf-8").read(), self.path)
        for node in tree.body:  # the other protos this one depends on must be registered first
            if isinstance(node, ast.ImportFrom) and node.module == "object_detection.protos":
                for alias in node.names:
                    importlib.import_module(f"object_detection.protos.{alias.name}")
        serialized = next(
            node.value.value
            for node in ast.walk(tree)
            if isinstance(node, ast.keyword) and node.arg == "serialized_pb"
        )
        pool = descriptor_pool.Default()
        descriptor = pool.AddSerializedFile(serialized)
        if not hasattr(descriptor, "message_types_by_name"):  # AddSerializedFile returns bytes on upb
            descriptor = pool.FindFileByName(_proto_file_name(serialized))
        module.DESCRIPTOR = descriptor
        builder.BuildMessageAndEnumDescriptors(descriptor, module.__dict__)
        builder.BuildTopDescriptorsAndMessages(descriptor, module.__name__, module.__dict__)


def _proto_file_name(serialized: bytes) -> str:
    from google.protobuf import descriptor_pb2

    return descriptor_pb2.FileDescriptorProto.FromString(serialized).name


class _ProtoFinder(importlib.abc.MetaPathFinder):
    """Routes ``object_detection.protos.*_pb2`` imports to :class:`_RegeneratedProtoLoader`."""

    def find_spec(self, fullname, path, target=None):
        if not (fullname.startswith("object_detection.protos.") and fullname.endswith("_pb2")):
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or not spec.origin:
            return None
        return importlib.util.spec_from_file_location(
            fullname, spec.origin, loader=_RegeneratedProtoLoader(spec.origin)
        )


if not any(isinstance(finder, _ProtoFinder) for finder in sys.meta_path):
    sys.meta_path.insert(0, _ProtoFinder())

# Fix 3 - "cannot import name 'estimator' from 'tensorflow.compat.v1'" (inputs.py): TF 2.16
# removed tf.estimator; the TF2 code path only reads its ModeKeys string constants.
if "tensorflow.compat.v1.estimator" not in sys.modules:
    _estimator = types.ModuleType("tensorflow.compat.v1.estimator")
    _estimator.ModeKeys = types.SimpleNamespace(TRAIN="train", EVAL="eval", PREDICT="infer")
    sys.modules["tensorflow.compat.v1.estimator"] = _estimator
    tf.compat.v1.estimator = _estimator

# Fix 4 - "module 'tensorflow.python.ops.control_flow_ops' has no attribute 'case'"
# (tf_slim's example decoder, first training step): TF moved these functions to their own modules.
from tensorflow.python.ops import (  # noqa: E402
    cond,
    control_flow_assert,
    control_flow_case,
    control_flow_ops,
    while_loop,
)

for _name, _function in {
    "case": control_flow_case.case,
    "cond": cond.cond,
    "while_loop": while_loop.while_loop,
    "Assert": control_flow_assert.Assert,
}.items():
    if not hasattr(control_flow_ops, _name):
        setattr(control_flow_ops, _name, _function)

# Fix 5 - tensorflow-io has no TF 2.20 build ("undefined symbol: _ZN3tsl5mutex6unlockEv"); only
# the DeepMAC architecture, which livedroid never builds, imports it. An empty module stands in.
sys.modules.setdefault("tensorflow_io", types.ModuleType("tensorflow_io"))
