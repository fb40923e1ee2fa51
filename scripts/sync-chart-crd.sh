#!/usr/bin/env bash
# Copies the generated CRD (crds/flinkjob.yaml) into the Helm chart, which installs it from
# charts/weir/crds/. operator/tests/chart.rs fails while the two differ.
set -euo pipefail
cd "$(dirname "$0")/.."
cp crds/flinkjob.yaml charts/weir/crds/flinkjob.yaml
echo "synced charts/weir/crds/flinkjob.yaml"
