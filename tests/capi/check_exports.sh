#!/bin/sh
# Fails when the shared library exports any dynamic symbol outside the ivr_ namespace.
set -eu
lib="$1"
bad=$(nm -D --defined-only "$lib" | awk '{print $3}' | grep -v '^ivr_' | grep -v '^IVR_0$' || true)
count=$(nm -D --defined-only "$lib" | awk '{print $3}' | grep -c '^ivr_' || true)
if [ -n "$bad" ]; then
  echo "symbols outside ivr_* exported from $lib:"; echo "$bad"; exit 1
fi
if [ "$count" -lt 10 ]; then echo "only $count ivr_* symbols exported"; exit 1; fi
echo "OK: $count ivr_* symbols, nothing else"
