#!/usr/bin/env bash
# Deploy boatyard's stage STAGE to AWS with one command, then upload the UI.
#
#   ARTIFACT_BUCKET=my-artifacts VPC_ID=vpc-... SUBNET_IDS=subnet-a,subnet-b \
#       bash infra/deploy.sh STAGE
#
# Environment:
#   ARTIFACT_BUCKET  (required) existing S3 bucket for the Lambda zip, the
#                    worker bundle and the template (same region as the stack)
#   VPC_ID, SUBNET_IDS  worker network; required on the first deploy, kept after
#   STACK_NAME       default boatyard-STAGE
#   PARAMETERS       more CloudFormation overrides, "Key=Value Key=Value"
#                    (e.g. "WorkerMaxSize=8 WorkerInstanceType=c6i.2xlarge")
#   SKIP_PACKAGE=1   reuse build/infra/STAGE from an earlier infra/package.sh
#   AWS_REGION / AWS_DEFAULT_REGION / AWS_PROFILE as for the aws CLI
# Steps: package (chalice package + merge), upload the worker bundle,
# `aws cloudformation package` + `deploy`, write ui/config.js with the API
# URL, sync ui/ to the UI bucket and invalidate CloudFront's copy, then
# refresh the worker hosts.
set -euo pipefail

STAGE=${1:-${STAGE:-}}
if [ -z "$STAGE" ]; then
    echo "usage: bash infra/deploy.sh STAGE   (ARTIFACT_BUCKET=... VPC_ID=... SUBNET_IDS=...)" >&2
    exit 2
fi
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${INFRA_OUT:-$ROOT/build/infra/$STAGE}
STACK_NAME=${STACK_NAME:-boatyard-$STAGE}
: "${ARTIFACT_BUCKET:?set ARTIFACT_BUCKET to an S3 bucket for deploy artifacts}"
PREFIX="boatyard/$STAGE"

if ! command -v aws >/dev/null 2>&1; then
    echo "infra/deploy.sh: the aws CLI is needed (https://aws.amazon.com/cli/)" >&2
    exit 1
fi

if [ "${SKIP_PACKAGE:-0}" != 1 ]; then
    INFRA_OUT="$OUT" bash "$ROOT/infra/package.sh" "$STAGE"
fi
for built in sam.yaml worker.tar.gz; do
    [ -e "$OUT/$built" ] || { echo "infra/deploy.sh: $OUT/$built is missing" >&2; exit 1; }
done

# 1. the worker bundle, content-addressed so a new bundle makes a new launch template version
digest=$(sha256sum "$OUT/worker.tar.gz" | cut -c1-16)
worker_key="$PREFIX/worker-$digest.tar.gz"
aws s3 cp "$OUT/worker.tar.gz" "s3://$ARTIFACT_BUCKET/$worker_key"

# 2. the template: upload the Lambda zip, then create/update the stack
aws cloudformation package \
    --template-file "$OUT/sam.yaml" \
    --s3-bucket "$ARTIFACT_BUCKET" --s3-prefix "$PREFIX" \
    --output-template-file "$OUT/packaged.yaml"

overrides=("ArtifactBucket=$ARTIFACT_BUCKET" "WorkerArtifactKey=$worker_key")
[ -n "${VPC_ID:-}" ] && overrides+=("VpcId=$VPC_ID")
[ -n "${SUBNET_IDS:-}" ] && overrides+=("SubnetIds=$SUBNET_IDS")
if [ -n "${PARAMETERS:-}" ]; then
    read -r -a extra <<<"$PARAMETERS"
    overrides+=("${extra[@]}")
fi
aws cloudformation deploy \
    --template-file "$OUT/packaged.yaml" \
    --stack-name "$STACK_NAME" \
    --s3-bucket "$ARTIFACT_BUCKET" --s3-prefix "$PREFIX" \
    --capabilities CAPABILITY_IAM CAPABILITY_AUTO_EXPAND \
    --no-fail-on-empty-changeset \
    --tags "app=boatyard" "stage=$STAGE" \
    --parameter-overrides "${overrides[@]}"

output() {
    aws cloudformation describe-stacks --stack-name "$STACK_NAME" \
        --query "Stacks[0].Outputs[?OutputKey=='$1'].OutputValue" --output text
}
endpoint=$(output EndpointURL)
ui_bucket=$(output UiBucketName)
ui_distribution=$(output UiDistributionId)
worker_group=$(output WorkerGroupName)
api_base=${endpoint%/}
if [ -z "$api_base" ] || [ -z "$ui_bucket" ] || [ "$api_base" = None ] || [ "$ui_bucket" = None ]; then
    echo "infra/deploy.sh: stack $STACK_NAME has no EndpointURL/UiBucketName output" >&2
    exit 1
fi

# 3. the UI, with config.js pointing at this stage's API
rm -rf "$OUT/ui"
cp -R "$ROOT/ui" "$OUT/ui"
cat >"$OUT/ui/config.js" <<JS
// Written by infra/deploy.sh for stage $STAGE (stack $STACK_NAME).
window.BOATYARD_CONFIG = {apiBase: "$api_base"};
JS
aws s3 sync "$OUT/ui/" "s3://$ui_bucket/" --delete --exclude config.js
aws s3 cp "$OUT/ui/config.js" "s3://$ui_bucket/config.js" \
    --content-type "application/javascript" --cache-control "no-cache"
# CloudFront caches the other files for up to a day: drop its copies of this release's predecessors
if [ -n "$ui_distribution" ] && [ "$ui_distribution" != None ]; then
    aws cloudfront create-invalidation --distribution-id "$ui_distribution" --paths "/*" >/dev/null
fi

# 4. hosts still on an older launch template version drain (lifecycle hook) and are replaced
if [ -n "$worker_group" ] && [ "$worker_group" != None ]; then
    aws autoscaling start-instance-refresh --auto-scaling-group-name "$worker_group" \
        --preferences '{"MinHealthyPercentage": 50, "SkipMatching": true}' >/dev/null \
        || echo "infra/deploy.sh: no instance refresh started (one may be in progress)" >&2
fi

echo "infra/deploy.sh: stage $STAGE deployed"
echo "  API: $api_base"
echo "  UI:  $(output UiURL)"
