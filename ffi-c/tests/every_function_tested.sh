#!/usr/bin/env bash
# Every function the header declares is called by the C test program.
#   every_function_tested.sh <insitu.h> <test_capi.c>
set -euo pipefail
missing=0
for f in $(grep -oE '\binsitu_[a-z0-9_]+\(' "$1" | tr -d '(' | sort -u); do
    if ! grep -q "\b$f(" "$2"; then
        echo "not called by the C tests: $f"
        missing=1
    fi
done
[ "$missing" = 0 ] && echo "every C function is called by the C tests"
