#!/bin/bash
# Wait until Auto Scaling wants this host terminated, let the worker finish its
# running builds, then complete the termination lifecycle action.
#
# The target state comes from instance metadata (IMDSv2,
# meta-data/autoscaling/target-lifecycle-state); `systemctl stop` sends the
# worker SIGTERM and blocks until it exits (at most TimeoutStopSec, which is
# >= BOATYARD_SHUTDOWN_GRACE_SECONDS).  If this script never gets there, the
# hook's heartbeat timeout (>= the grace) lets the termination continue.
# Needs: AWS_DEFAULT_REGION, BOATYARD_ASG_NAME, BOATYARD_LIFECYCLE_HOOK.
set -uo pipefail

IMDS=http://169.254.169.254/latest
POLL_SECONDS=${BOATYARD_LIFECYCLE_POLL_SECONDS:-5}

metadata() {
    local token
    token=$(curl -sf -X PUT "$IMDS/api/token" -H "X-aws-ec2-metadata-token-ttl-seconds: 300") || return 1
    curl -sf -H "X-aws-ec2-metadata-token: $token" "$IMDS/meta-data/$1"
}

while true; do
    state=$(metadata autoscaling/target-lifecycle-state || true)
    if [ "$state" = "Terminated" ]; then
        break
    fi
    sleep "$POLL_SECONDS"
done

echo "boatyard-lifecycle: Auto Scaling is terminating this host; draining the worker"
systemctl stop boatyard-worker.service
instance_id=$(metadata instance-id)
exec aws autoscaling complete-lifecycle-action \
    --region "$AWS_DEFAULT_REGION" \
    --auto-scaling-group-name "$BOATYARD_ASG_NAME" \
    --lifecycle-hook-name "$BOATYARD_LIFECYCLE_HOOK" \
    --instance-id "$instance_id" \
    --lifecycle-action-result CONTINUE
