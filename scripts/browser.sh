#!/usr/bin/env bash
# Installs what the console's browser tests drive: Debian's chromium and
# chromium-driver (WebDriver), and Japanese fonts for the screenshots. Skipped
# when both commands are present; needs root or sudo (about 2 minutes).
set -euo pipefail
if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
echo "== installing chromium, chromium-driver and fonts-noto-cjk (apt-get)"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium chromium-driver fonts-noto-cjk >/dev/null
echo "browser ready: $(chromium --version 2>/dev/null | head -1)"
