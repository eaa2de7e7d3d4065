#!/usr/bin/env bash
# Build boatyard's deployable CloudFormation template without AWS credentials.
#
#   bash infra/package.sh [STAGE]        (default: $STAGE or "dev")
#
# Writes build/infra/<STAGE>/ (or $INFRA_OUT):
#   sam.yaml         chalice's template (API Gateway + Lambda) merged with
#                    infra/resources.yaml (storage, queue, key, workers)
#   deployment.zip   the Lambda bundle (CodeUri in sam.yaml)
#   worker.tar.gz    the worker bundle the hosts download at boot
# and checks the merged template (the API role comes from lambda-policy.json,
# the Lambda gets the resource names).  Nothing here talks to AWS.
set -euo pipefail

STAGE=${1:-${STAGE:-dev}}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${INFRA_OUT:-$ROOT/build/infra/$STAGE}
# tools: $CHALICE / $PYTHON if set, else the project's virtualenv, else PATH
if [ -z "${CHALICE:-}" ]; then
    if [ -x "$ROOT/.venv/bin/chalice" ]; then CHALICE="$ROOT/.venv/bin/chalice"; else CHALICE=chalice; fi
fi
if [ -z "${PYTHON:-}" ]; then
    if [ -x "$ROOT/.venv/bin/python" ]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON=python3; fi
fi

# app.py wires the API-key authorizer when it is loaded with BOATYARD_AUTH=keys: deployed stages always are.
export BOATYARD_AUTH=keys
# chalice wants a region to name things; packaging never calls AWS.
export AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-${AWS_REGION:-us-east-1}}

for required in app.py .chalice/config.json worker/__main__.py requirements.txt requirements-worker.txt; do
    if [ ! -e "$ROOT/$required" ]; then
        echo "infra/package.sh: $required is missing; it is needed for the package" >&2
        exit 1
    fi
done

rm -rf "$OUT"
mkdir -p "$OUT"

echo "infra/package.sh: chalice package (stage $STAGE) merged with infra/resources.yaml"
(cd "$ROOT" && "$CHALICE" package --stage "$STAGE" --pkg-format cloudformation \
    --template-format yaml --merge-template infra/resources.yaml "$OUT")

echo "infra/package.sh: worker bundle"
(cd "$ROOT" && tar --exclude='__pycache__' --exclude='*.pyc' -czf "$OUT/worker.tar.gz" \
    chalicelib worker requirements.txt requirements-worker.txt \
    infra/worker infra/README.md)

"$PYTHON" "$ROOT/infra/check_template.py" "$OUT/sam.yaml"
if [ -z "${CFN_LINT:-}" ]; then
    if [ -x "$ROOT/.venv/bin/cfn-lint" ]; then CFN_LINT="$ROOT/.venv/bin/cfn-lint"; else CFN_LINT=$(command -v cfn-lint || true); fi
fi
if [ -n "$CFN_LINT" ]; then
    echo "infra/package.sh: cfn-lint"
    "$CFN_LINT" -- "$OUT/sam.yaml"
else
    echo "infra/package.sh: cfn-lint not installed; template not linted" >&2
fi
echo "infra/package.sh: wrote $OUT/sam.yaml, $OUT/deployment.zip, $OUT/worker.tar.gz"
