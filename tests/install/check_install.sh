#!/bin/sh
# Installs the build into a temporary prefix, then builds and runs a consumer found two
# ways: CMake's find_package(ivr) and pkg-config. Usage: check_install.sh BUILD_DIR SRC_DIR
set -eu
build=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
cmake -S "$src/consumer" -B "$tmp/cmake" -G Ninja -DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null
cmake --build "$tmp/cmake" >/dev/null
LD_LIBRARY_PATH="$tmp/prefix/lib:$tmp/prefix/lib/x86_64-linux-gnu" "$tmp/cmake/consumer"
pcdir=$(dirname "$(find "$tmp/prefix" -name ivr.pc | head -1)")
flags=$(PKG_CONFIG_PATH="$pcdir" pkg-config --cflags --libs ivr)
cc -std=c99 -Wall -Werror "$src/consumer/main.c" $flags -o "$tmp/pc_consumer" ${IVR_EXTRA_LDFLAGS:-}
LD_LIBRARY_PATH="$tmp/prefix/lib:$tmp/prefix/lib/x86_64-linux-gnu" "$tmp/pc_consumer"
echo "OK: find_package(ivr) and pkg-config ivr both build and run"
# The Python package, when the bindings were built: importable from the prefix alone.
pyinit=$(find "$tmp/prefix" -path '*-packages/ivr/__init__.py' | head -1)
if [ -n "$pyinit" ]; then
  PYTHONPATH=$(dirname "$(dirname "$pyinit")") /usr/bin/python3 -c \
    "import ivr; e = ivr.Engine(sip_port=0); e.start(); e.close(); print('OK: import ivr from', ivr.__file__)"
fi
