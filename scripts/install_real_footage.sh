#!/usr/bin/env bash
# Install the real footage of lab4/datasets/real_footage.py from Debian, if missing and if we can; else say how.
# opencv-doc ships OpenCV's sample video samples/data/vtest.avi (795 frames of pedestrians, Apache-2.0/BSD-3).
exec bash "$(dirname "$0")/apt_install.sh" "real footage (OpenCV's vtest.avi, package opencv-doc)" \
  "opencv-doc" \
  'test -f /usr/share/doc/opencv-doc/examples/data/vtest.avi' \
  "the real-footage check (tests/test_real_footage.py) will be skipped"
