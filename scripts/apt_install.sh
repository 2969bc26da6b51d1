#!/usr/bin/env bash
# Install Debian packages for one purpose when they are missing and we may (root with apt-get); else say how.
# Usage: bash scripts/apt_install.sh WHAT "PACKAGES" CHECK-COMMAND [CONSEQUENCE]
#   WHAT:         what they are for, e.g. "TeX (XeLaTeX, latexmk, CJK fonts)"
#   CHECK-COMMAND: a shell test that succeeds when everything is already there (nothing is installed then)
#   CONSEQUENCE:  what is skipped without them, e.g. "the PDF will be skipped"
# Always exits 0: a missing optional tool is a warning here and a clear message where it is needed.
WHAT="$1"; PKGS="$2"; CHECK="$3"; WITHOUT="${4:-some steps will be skipped}"
if bash -c "$CHECK" >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing $WHAT from Debian..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends $PKGS >/dev/null && exit 0
  echo "warning: apt-get could not install $WHAT; $WITHOUT" >&2
  exit 0
fi
echo "$WHAT missing; run:  sudo apt-get install --no-install-recommends $PKGS" >&2
exit 0
