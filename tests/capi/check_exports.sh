#!/bin/sh
# Fails when the shared library exports any dynamic symbol outside the ivr_ namespace, or
# does not export a function that the public headers (include/ivr/*.h) declare.
set -eu
lib="$1"
headers="$(dirname "$0")/../../include/ivr"
exported=$(nm -D --defined-only "$lib" | awk '{print $3}' | sed 's/@.*//' | sort -u)
bad=$(echo "$exported" | grep -v '^ivr_' | grep -v '^IVR_0$' || true)
count=$(echo "$exported" | grep -c '^ivr_' || true)
if [ -n "$bad" ]; then
  echo "symbols outside ivr_* exported from $lib:"; echo "$bad"; exit 1
fi
if [ "$count" -lt 10 ]; then echo "only $count ivr_* symbols exported"; exit 1; fi
declared=$(grep -h '^IVR_API' "$headers"/*.h | grep -o 'ivr_[a-z0-9_]*(' | tr -d '(' | sort -u)
missing=$(echo "$declared" | grep -vxF "$exported" || true)
if [ -n "$missing" ]; then
  echo "declared in $headers but not exported from $lib:"; echo "$missing"; exit 1
fi
echo "OK: $count ivr_* symbols, nothing else; all $(echo "$declared" | wc -l) declared functions exported"
