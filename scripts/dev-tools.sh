#!/usr/bin/env bash
# Creates .venv with the pinned Python tools (moto server, cfn-lint, schemathesis) unless it is
# already up to date with requirements-dev.txt. Idempotent; safe to run often.
set -euo pipefail
cd "$(dirname "$0")/.."
stamp=.venv/.requirements-dev.txt
if [ -x .venv/bin/moto_server ] && [ -x .venv/bin/cfn-lint ] && [ -x .venv/bin/schemathesis ] && cmp -s requirements-dev.txt "$stamp"; then
  exit 0
fi
python3 -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
cp requirements-dev.txt "$stamp"
echo "dev tools ready in .venv"
