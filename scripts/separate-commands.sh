#!/usr/bin/env bash
# The commands an examiner runs one by one to answer what `deadnode triage`
# answers at once ("which pod was attacked, what did the attacker drop,
# which process ran it, what did it talk to"), for the benchmark that
# compares the two (BENCHMARKS.md). Usage: separate-commands.sh DEADNODE EVIDENCE
set -euo pipefail
dn=$1 root=$2
run() { "$dn" --root "$root" "$@" -o json >/dev/null 2>&1 || true; }
run ls pods
run ls containers
run ls images
run inspect shop/shop-frontend-7d9c8b6f5-x2k4q/app
run drift --all
run image verify --all
run checkpoint ls
ck=sha256:59633960fda9a188befcefff9d80fd7afe76cbe3540012e71f55835d04873a96
run checkpoint inspect "$ck" --all
run mem search "$ck" --string miner
run mem search "$ck" --string backdoor.sh
run timeline
run kubelet
run logs
run host persistence
run host packages
run ls execs
