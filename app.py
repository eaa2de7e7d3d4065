"""boatyard's HTTP API (Chalice).  Routes only: parse, call chalicelib, shape the answer.

See DESIGN.md and openapi.yaml for the contract; errors are mapped in
chalicelib.api.error_mapping.
"""

from __future__ import annotations

from typing import Any

from chalice import AuthResponse, Chalice, CORSConfig, Response
from chalice.app import AuthRequest, Request

from chalicelib.api import authn, job_views, notify_views, request_body, static_ui, submit, triggers, validation
from chalicelib.api.error_mapping import JSON_HEADERS, json_errors
from chalicelib.api.request_log import configure_logging, log_requests
from chalicelib.domain.settings import get_settings
from chalicelib.stores import history
from chalicelib.stores.apikeys import Principal

app = Chalice(app_name="boatyard")
configure_logging()
app.register_middleware(log_requests, "http")  # one structured line per request
authn.mirror_gateway_responses()  # chalice local / chalice.test: 401 {Code, Message} as deployed
# Raw bytes of uploads must reach raw_body intact behind API Gateway (it base64-encodes these types).
for _type in ("multipart/form-data", "application/x-gzip", "application/gzip", *static_ui.BINARY_TYPES):
    if _type not in app.api.binary_types:
        app.api.binary_types.append(_type)

# "*" locally; deployed, only the UI's CloudFront origin (BOATYARD_CORS_ORIGIN from infra/resources.yaml)
CORS = CORSConfig(allow_origin=get_settings().cors_origin, allow_headers=["Content-Type", "Authorization"], max_age=600)
ANY_TYPE = ["*/*"]  # content types are checked by chalicelib.api.request_body (JSON 415 answers)


@app.authorizer(ttl_seconds=get_settings().auth_cache_seconds, header="Authorization")
def key_authorizer(auth_request: AuthRequest) -> AuthResponse:
    """API Gateway's check of ``Authorization: Bearer <key>``: the key's owner for every route, or 401."""
    principal = authn.authorize(auth_request.token)
    return AuthResponse(routes=["*"], principal_id=principal.owner, context=authn.principal_context(principal))


# BOATYARD_AUTH=keys guards every API route (decided when the app is loaded, as API Gateway is configured once)
AUTH = key_authorizer if authn.keys_required() else None


def _request() -> Request:
    """The request being handled (chalice sets it before it calls a route)."""
    request = app.current_request
    assert request is not None, "only called from a route"
    return request


def _caller() -> Principal:
    return authn.caller(app.current_request)


STATIC_UI_ROUTES = {("/", "GET"), ("/{asset}", "GET")}
"""Routes that serve the web UI in the local stack; not part of the API (not in openapi.yaml)."""


def _json(body: Any, status: int = 200) -> Response:
    return Response(body=body, status_code=status, headers=dict(JSON_HEADERS))


@app.route("/api/v1/build", methods=["POST"], cors=CORS, content_types=ANY_TYPE, authorizer=AUTH)
@json_errors
def build() -> Response:
    """Submit a build: JSON with one source, or multipart with parts TarFile and Json → 202 JobIdentifier."""
    request = _request()
    parsed = request_body.parse_build_body(request.headers, request.raw_body, get_settings())
    job_id = submit.submit_build(parsed.request, parsed.archive, _caller())
    return _json({"JobIdentifier": job_id}, 202)


@app.route("/api/v1/uploads", methods=["POST"], cors=CORS, content_types=ANY_TYPE, authorizer=AUTH)
@json_errors
def create_upload() -> Response:
    """A presigned S3 POST for a large archive, and the upload_id to build it with."""
    return _json(submit.create_upload(_caller()))


@app.route("/api/v1/jobs", methods=["GET"], cors=CORS, content_types=ANY_TYPE, authorizer=AUTH)
@json_errors
def list_jobs() -> Response:
    """The caller's jobs, newest first: ``?limit=&cursor=&state=`` (admin keys: ``&owner=``)."""
    owner, limit, cursor, state = history.parse_query(_request().query_params, _caller())
    return _json(history.list_jobs(owner, limit, cursor, state))


@app.route("/api/v1/{job_id}/status", methods=["GET"], cors=CORS, content_types=ANY_TYPE, authorizer=AUTH)
@json_errors
def job_status(job_id: str) -> Response:
    """The job's status: the seed's Status word plus Phase, timestamps, attempt, digest."""
    return _json(job_views.status_body(validation.parse_job_id(job_id), _caller()))


@app.route("/api/v1/{job_id}/cancel", methods=["POST"], cors=CORS, content_types=ANY_TYPE, authorizer=AUTH)
@json_errors
def cancel_job(job_id: str) -> Response:
    """Cancel a queued or running job (its worker stops the build at the next heartbeat)."""
    return _json(job_views.cancel(validation.parse_job_id(job_id), _caller()))


@app.route("/api/v1/{job_id}/logs", methods=["GET"], cors=CORS, content_types=ANY_TYPE, authorizer=AUTH)
@json_errors
def job_logs(job_id: str) -> Response:
    """The job's log text; with ?since=<cursor> only what came after it."""
    job_id = validation.parse_job_id(job_id)
    query = _request().query_params
    since: str | None = query.get("since") if query else None
    return _json(job_views.logs_body(job_id, validation.parse_since(since), _caller()))


@app.route("/api/v1/triggers", methods=["POST"], cors=CORS, content_types=ANY_TYPE, authorizer=AUTH)
@json_errors
def create_trigger() -> Response:
    """Create a build trigger: 201 with its webhook URL and secret (shown this once)."""
    request = _request()
    return _json(triggers.create_trigger(request.raw_body, request.headers, request.context or {}, _caller()), 201)


@app.route("/api/v1/triggers", methods=["GET"], cors=CORS, content_types=ANY_TYPE, authorizer=AUTH)
@json_errors
def list_triggers() -> Response:
    """The caller's triggers, newest first (never a secret or credential)."""
    return _json(triggers.list_triggers(_caller()))


@app.route("/api/v1/triggers/{trigger_id}", methods=["GET"], cors=CORS, content_types=ANY_TYPE, authorizer=AUTH)
@json_errors
def get_trigger(trigger_id: str) -> Response:
    """One of the caller's triggers and its recent builds; 404 for an unknown id or someone else's."""
    return _json(triggers.trigger_body(trigger_id, _caller()))


@app.route("/api/v1/triggers/{trigger_id}", methods=["DELETE"], cors=CORS, content_types=ANY_TYPE, authorizer=AUTH)
@json_errors
def delete_trigger(trigger_id: str) -> Response:
    """Delete one of the caller's triggers (its builds stay in the history)."""
    return _json(triggers.delete_trigger(trigger_id, _caller()))


@app.route("/api/v1/hooks/{trigger_id}", methods=["POST"], content_types=ANY_TYPE)
@json_errors
def git_hook(trigger_id: str) -> Response:
    """A git host's webhook delivery: no API key, the host's signature with the trigger's secret is the check."""
    request = _request()
    answer = triggers.handle_hook(trigger_id, request.raw_body, request.headers, request.context or {})
    return _json(answer.body, answer.status)


@app.route("/api/v1/{job_id}/notifications", methods=["GET"], cors=CORS, content_types=ANY_TYPE, authorizer=AUTH)
@json_errors
def job_notifications(job_id: str) -> Response:
    """The job's notification subscriptions and every delivery attempt (time, status or error, duration)."""
    return _json(notify_views.notifications_body(validation.parse_job_id(job_id), _caller()))


# A placeholder: the merged template wires the event source to NotifyQueue.Arn (infra/resources.yaml,
# checked by infra/check_template.py); a literal ARN is what lets the merge replace it whole.
NOTIFY_QUEUE_ARN = f"arn:aws:sqs:{get_settings().region}:000000000000:{get_settings().notify_queue_name}"


@app.on_sqs_message(queue_arn=NOTIFY_QUEUE_ARN, batch_size=1)
def send_notifications(event: Any) -> None:
    """The notifications queue's consumer (deployed; the local stack polls with chalicelib.api.notify_poller)."""
    from chalicelib.api import notify_sender as sender  # only this Lambda sends; the API function never loads it

    for record in event:
        sender.handle(record.body)


@app.route("/", methods=["GET"], content_types=ANY_TYPE)
@json_errors
def ui_index() -> Response:
    """The web UI's page (local stack only)."""
    return _asset("index.html")


@app.route("/{asset}", methods=["GET"], content_types=ANY_TYPE)
@json_errors
def ui_asset(asset: str) -> Response:
    """A file of the web UI (local stack only)."""
    return _asset(asset)


def _asset(name: str) -> Response:
    found = static_ui.load_asset(name, get_settings())
    return Response(
        body=found.body, status_code=200, headers={"Content-Type": found.content_type, "Cache-Control": "no-cache"}
    )
