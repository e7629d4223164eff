#!/usr/bin/env bash
# The one test command: provisions the Python tools and the browser (Chromium and
# its WebDriver, for the console's tests), lints the SAM template, starts
# one moto server for the whole run, parses the HubSpot project with HubSpot's own
# parser, type-checks and tests the HubSpot app card (npm), and runs every Rust
# test (unit, contract suite on memory and on DynamoDB/SQS, end to end, the
# console in headless Chromium). Fails if moto cannot start.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/dev-tools.sh
scripts/browser.sh

echo "== cfn-lint template.yaml"
.venv/bin/cfn-lint --append-rules cfn_lint_serverless.rules -- template.yaml

mkdir -p target
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
.venv/bin/moto_server -H 127.0.0.1 -p "$port" >target/moto.log 2>&1 &
moto_pid=$!
trap 'kill $moto_pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  if python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null; then break; fi
  sleep 0.1
done
export MOTO_ENDPOINT="http://127.0.0.1:$port"
echo "== moto server at $MOTO_ENDPOINT"

echo "== the HubSpot project through HubSpot's own parser (@hubspot/project-parsing-lib)"
(cd infra/hubspot-app-check && npm ci --no-audit --no-fund --silent && npm run --silent check)

echo "== the HubSpot app card (type-check and component tests)"
card_status=0
(cd infra/hubspot-app/src/app/cards && npm ci --no-audit --no-fund && NO_COLOR=1 FORCE_COLOR=0 npm test) 2>&1 | tee target/card-test-output.log || card_status=$?

echo "== cargo test"
status=0
cargo test --workspace --all-targets --no-fail-fast "$@" 2>&1 | tee target/test-output.log || status=$?
# One closing line for the whole run (cargo prints one per test binary).
passed=$(grep -Eo 'test result: [A-Za-z]+\. [0-9]+ passed' target/test-output.log | awk '{s+=$4} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed;' target/test-output.log | awk '{s+=$1} END {print s+0}')
card_passed=$( (sed 's/\x1b\[[0-9;]*m//g' target/card-test-output.log | grep -Eo 'Tests +[0-9]+ passed' || true) | awk '{s+=$2} END {print s+0}')
card_failed=$( (sed 's/\x1b\[[0-9;]*m//g' target/card-test-output.log | grep -Eo '[0-9]+ failed' || true) | awk '{s+=$1} END {print s+0}')
passed=$((passed + card_passed))
failed=$((failed + card_failed))
if [ "$card_status" -ne 0 ] && [ "$status" -eq 0 ]; then status=$card_status; fi
echo
echo "summary: $passed passed, $failed failed"
exit "$status"
