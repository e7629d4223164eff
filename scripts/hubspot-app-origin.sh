#!/usr/bin/env bash
# Points the HubSpot project at a deployment: replaces the service origin in the app's
# redirect URL and permitted fetch URLs, the webhook target and the card's endpoint.
#   scripts/hubspot-app-origin.sh https://hubspot.example.com
# The origin must be the deployment's PUBLIC_BASE_URL exactly (signatures are computed on it).
set -euo pipefail
cd "$(dirname "$0")/.."
new=${1:?usage: scripts/hubspot-app-origin.sh https://<your origin>}
new=${new%/}
case "$new" in
  https://*) ;;
  *) echo "the origin must be https:// (HubSpot refuses other redirect and fetch URLs)" >&2; exit 2 ;;
esac
files=(
  infra/hubspot-app/src/app/app-hsmeta.json
  infra/hubspot-app/src/app/webhooks/webhooks-hsmeta.json
  infra/hubspot-app/src/app/cards/config.ts
)
old=$(grep -Eo '"https://[^"/]+' infra/hubspot-app/src/app/cards/config.ts | head -1 | tr -d '"')
if [ -z "$old" ]; then echo "no origin found in cards/config.ts" >&2; exit 1; fi
for f in "${files[@]}"; do
  python3 - "$f" "$old" "$new" <<'PY'
import sys
path, old, new = sys.argv[1:]
text = open(path, encoding="utf-8").read()
open(path, "w", encoding="utf-8").write(text.replace(old, new))
PY
done
echo "origin $old -> $new in ${#files[@]} files"
