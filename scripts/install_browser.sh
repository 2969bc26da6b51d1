#!/usr/bin/env bash
# Install Debian's Chromium and ChromeDriver for tests/test_browser.py, if missing and if we can; else say how.
# The test drives /usr/bin/chromium with Playwright (never a downloaded browser); chromedriver is there for
# anyone who prefers Selenium by hand.
PKGS="chromium chromium-driver"
if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing Chromium and ChromeDriver from Debian..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends $PKGS >/dev/null && exit 0
  echo "warning: apt-get could not install Chromium; the browser test will be skipped" >&2
  exit 0
fi
echo "Chromium is missing; for the browser test run:  sudo apt-get install --no-install-recommends $PKGS" >&2
exit 0
