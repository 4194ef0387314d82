"""Training half of livedroid: dataset preparation, fine-tuning, evaluation, export (needs the
``train`` extra). Installed as ``livedroid.training`` from the repository's ``training/`` folder.

The Object Detection API needs Keras 2 (tf-keras), which TensorFlow only picks when
``TF_USE_LEGACY_KERAS=1`` is set before its first import. Setting it here, the first thing any
training module runs, makes every entry point work whatever it imports next.
"""

import os
import sys

if "tensorflow" not in sys.modules:  # too late otherwise: compat then says so in one line
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
# TensorFlow's C++ start-up chatter (CUDA probing on machines without a GPU, oneDNN notes) would
# bury livedroid's own lines; Python-side errors still surface as exceptions.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
