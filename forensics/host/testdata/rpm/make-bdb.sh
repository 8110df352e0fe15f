#!/bin/bash
# Makes bdb-Packages: a real Berkeley DB hash file, as rpm < 4.16 kept its
# Packages database, written by Berkeley DB 5.3's db_load (Debian:
# apt-get install -y db-util). deadnode refuses it by its magic.
#   bash make-bdb.sh OUTDIR
set -euo pipefail
OUT=$(realpath "${1:-.}")
rm -f "$OUT/bdb-Packages"
printf 'key1\nvalue1\n' | db_load -T -t hash "$OUT/bdb-Packages"
