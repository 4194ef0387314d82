"""Make the TensorFlow Object Detection API (PyPI ``tf-models-research-object-detection``
2.8.0.post1, written for TF 2.8) import and run on TensorFlow 2.20.

Import this module before anything from ``object_detection`` (``import livedroid.training.compat``); it
imports TensorFlow itself. Each fix below names the error it prevents; the errors were measured on
TF 2.20, Python 3.11.
"""

from __future__ import annotations

import ast
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
import types
import warnings

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

# Not a fix either: the API calls dozens of deprecated TF1 functions, each logging a warning.
tf.get_logger().setLevel("ERROR")
warnings.filterwarnings("ignore", message=".*set_learning_phase.*is deprecated", category=UserWarning)


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
