#!/usr/bin/env bash
# Install Debian's Chromium and ChromeDriver for tests/test_browser.py, if missing and if we can; else say how.
# The test drives /usr/bin/chromium with Playwright (never a downloaded browser); chromedriver is there for
# anyone who prefers Selenium by hand.
exec bash "$(dirname "$0")/apt_install.sh" "Chromium and ChromeDriver" "chromium chromium-driver" \
  'command -v chromium && command -v chromedriver' "the browser test will be skipped"
