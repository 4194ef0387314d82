#!/usr/bin/env bash
# Make opencv-python (GUI: the --show window) the only OpenCV in a venv, whatever else pulled in
# opencv-python-headless (the Object Detection API does). Both packages write the same cv2/ folder,
# so uninstalling one breaks the other: remove the headless one, then reinstall the GUI build's
# files at its installed version. Usage: scripts/use_opencv_gui.sh .venv/bin/python
set -euo pipefail
python="${1:-python3}"
if "$python" -m pip show -q opencv-python-headless 2>/dev/null; then
  version="$("$python" -m pip show opencv-python | sed -n 's/^Version: //p')"
  "$python" -m pip uninstall -q -y opencv-python-headless
  "$python" -m pip install -q --force-reinstall --no-deps "opencv-python==${version}"
fi
"$python" - <<'PY'
import cv2
info = cv2.getBuildInformation()
gui = info[info.find("GUI:"):].splitlines()[0].split(":", 1)[1].strip()
assert gui not in ("NONE", "NO"), f"OpenCV {cv2.__version__} has no GUI backend ({gui})"
print(f"OpenCV {cv2.__version__} with GUI {gui}")
PY
