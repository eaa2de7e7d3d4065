"""boatyard's HTTP API (Chalice).  Routes only: parse, call chalicelib, shape the answer.

See DESIGN.md and openapi.yaml for the contract; errors are mapped in
chalicelib.api.error_mapping.  :func:`create_app` wires the routes to one
:class:`~chalicelib.stores.services.Services`; ``app`` below is the one chalice
deploys and ``chalice local`` serves, built from the environment's settings.
"""

from __future__ import annotations

from typing import Any

from chalice import AuthResponse, Chalice, CORSConfig, Response
from chalice.app import AuthRequest, Request

from chalicelib.api import authn, job_views, notify_views, request_body, static_ui, submit, triggers, validation
from chalicelib.api.error_mapping import JSON_HEADERS, json_errors
from chalicelib.api.request_log import configure_logging, log_requests
from chalicelib.domain.settings import Settings
from chalicelib.stores import history
from chalicelib.stores.apikeys import Principal
from chalicelib.stores.services import Services

STATIC_UI_ROUTES = {("/", "GET"), ("/{asset}", "GET")}
"""Routes that serve the web UI in the local stack; not part of the API (not in openapi.yaml)."""

ANY_TYPE = ["*/*"]  # content types are checked by chalicelib.api.request_body (JSON 415 answers)
UPLOAD_TYPES = ("multipart/form-data", "application/x-gzip", "application/gzip", *static_ui.BINARY_TYPES)


def _json(body: Any, status: int = 200) -> Response:
    return Response(body=body, status_code=status, headers=dict(JSON_HEADERS))


def notify_queue_arn(settings: Settings) -> str:
    """The notifications consumer's event source: a placeholder ARN.

    The merged template wires the event source to NotifyQueue.Arn (infra/resources.yaml, checked by
    infra/check_template.py); a literal ARN is what lets the merge replace it whole.
    """
    return f"arn:aws:sqs:{settings.region}:000000000000:{settings.notify_queue_name}"


class _Routes:
    """What every route needs: the app, the stores, and who is calling."""

    def __init__(self, app: Chalice, services: Services) -> None:
        self.app = app
        self.settings = settings = services.settings
        self.services = services
        # "*" locally; deployed, only the UI's CloudFront origin (BOATYARD_CORS_ORIGIN from infra/resources.yaml)
        self.cors = CORSConfig(
            allow_origin=settings.cors_origin, allow_headers=["Content-Type", "Authorization"], max_age=600
        )
        self.auth: Any = None

    def request(self) -> Request:
        """The request being handled (chalice sets it before it calls a route)."""
        request = self.app.current_request
        assert request is not None, "only called from a route"
        return request

    def caller(self) -> Principal:
        """The principal of the request being handled."""
        return authn.caller(self.app.current_request, self.settings)

    def api(self, path: str, method: str) -> Any:
        """The decorator of one API route: CORS, any content type (checked by the route), the authorizer."""
        return self.app.route(path, methods=[method], cors=self.cors, content_types=ANY_TYPE, authorizer=self.auth)


def create_app(services: Services) -> Chalice:
    """The Chalice app over ``services`` (and their settings): every route, the authorizer, the notifications consumer.

    ``BOATYARD_AUTH=keys`` guards every API route (decided here, as API Gateway is configured once).
    Tests build their own app with the stores of the test.
    """
    settings = services.settings
    app = Chalice(app_name="boatyard")
    configure_logging()
    app.register_middleware(log_requests, "http")  # one structured line per request
    authn.mirror_gateway_responses()  # chalice local / chalice.test: 401 {Code, Message} as deployed
    # Raw bytes of uploads must reach raw_body intact behind API Gateway (it base64-encodes these types).
    app.api.binary_types.extend(t for t in UPLOAD_TYPES if t not in app.api.binary_types)
    routes = _Routes(app, services)
    authenticator = authn.Authenticator(services.apikeys, authn.cache_seconds(settings))

    @app.authorizer(ttl_seconds=settings.auth_cache_seconds, header="Authorization")
    def key_authorizer(auth_request: AuthRequest) -> AuthResponse:
        """API Gateway's check of ``Authorization: Bearer <key>``: the key's owner for every route, or 401."""
        principal = authenticator.authorize(auth_request.token)
        return AuthResponse(routes=["*"], principal_id=principal.owner, context=authn.principal_context(principal))

    routes.auth = key_authorizer if authn.keys_required(settings) else None
    _job_routes(routes)
    _trigger_routes(routes)
    _notification_routes(routes)
    _ui_routes(routes)
    return app


def _job_routes(r: _Routes) -> None:
    services = r.services

    @r.api("/api/v1/build", "POST")
    @json_errors
    def build() -> Response:
        """Submit a build: JSON with one source, or multipart with parts TarFile and Json → 202 JobIdentifier."""
        request = r.request()
        parsed = request_body.parse_build_body(request.headers, request.raw_body, r.settings)
        job_id = submit.submit_build(services, parsed.request, parsed.archive, r.caller())
        return _json({"JobIdentifier": job_id}, 202)

    @r.api("/api/v1/uploads", "POST")
    @json_errors
    def create_upload() -> Response:
        """A presigned S3 POST for a large archive, and the upload_id to build it with."""
        return _json(submit.create_upload(services, r.caller()))

    @r.api("/api/v1/jobs", "GET")
    @json_errors
    def list_jobs() -> Response:
        """The caller's jobs, newest first: ``?limit=&cursor=&state=`` (admin keys: ``&owner=``)."""
        owner, limit, cursor, state = history.parse_query(r.request().query_params, r.caller())
        return _json(services.history.list_jobs(owner, limit, cursor, state))

    @r.api("/api/v1/{job_id}/status", "GET")
    @json_errors
    def job_status(job_id: str) -> Response:
        """The job's status: the seed's Status word plus Phase, timestamps, attempt, digest."""
        return _json(job_views.status_body(services, validation.parse_job_id(job_id), r.caller()))

    @r.api("/api/v1/{job_id}/cancel", "POST")
    @json_errors
    def cancel_job(job_id: str) -> Response:
        """Cancel a queued or running job (its worker stops the build at the next heartbeat)."""
        return _json(job_views.cancel(services, validation.parse_job_id(job_id), r.caller()))

    @r.api("/api/v1/{job_id}/logs", "GET")
    @json_errors
    def job_logs(job_id: str) -> Response:
        """The job's log text; with ?since=<cursor> only what came after it."""
        job_id = validation.parse_job_id(job_id)
        query = r.request().query_params
        since: str | None = query.get("since") if query else None
        return _json(job_views.logs_body(services, job_id, validation.parse_since(since), r.caller()))


def _trigger_routes(r: _Routes) -> None:
    services = r.services

    @r.api("/api/v1/triggers", "POST")
    @json_errors
    def create_trigger() -> Response:
        """Create a build trigger: 201 with its webhook URL and secret (shown this once)."""
        request = r.request()
        created = triggers.create_trigger(
            services, request.raw_body, request.headers, request.context or {}, r.caller()
        )
        return _json(created, 201)

    @r.api("/api/v1/triggers", "GET")
    @json_errors
    def list_triggers() -> Response:
        """The caller's triggers, newest first (never a secret or credential)."""
        return _json(triggers.list_triggers(services, r.caller()))

    @r.api("/api/v1/triggers/{trigger_id}", "GET")
    @json_errors
    def get_trigger(trigger_id: str) -> Response:
        """One of the caller's triggers and its recent builds; 404 for an unknown id or someone else's."""
        return _json(triggers.trigger_body(services, trigger_id, r.caller()))

    @r.api("/api/v1/triggers/{trigger_id}", "DELETE")
    @json_errors
    def delete_trigger(trigger_id: str) -> Response:
        """Delete one of the caller's triggers (its builds stay in the history)."""
        return _json(triggers.delete_trigger(services, trigger_id, r.caller()))

    @r.app.route("/api/v1/hooks/{trigger_id}", methods=["POST"], content_types=ANY_TYPE)
    @json_errors
    def git_hook(trigger_id: str) -> Response:
        """A git host's webhook delivery: no API key, the host's signature with the trigger's secret is the check."""
        request = r.request()
        answer = triggers.handle_hook(services, trigger_id, request.raw_body, request.headers, request.context or {})
        return _json(answer.body, answer.status)


def _notification_routes(r: _Routes) -> None:
    services = r.services

    @r.api("/api/v1/{job_id}/notifications", "GET")
    @json_errors
    def job_notifications(job_id: str) -> Response:
        """The job's notification subscriptions and every delivery attempt (time, status or error, duration)."""
        return _json(notify_views.notifications_body(services, validation.parse_job_id(job_id), r.caller()))

    @r.app.on_sqs_message(queue_arn=notify_queue_arn(r.settings), batch_size=1)
    def send_notifications(event: Any) -> None:
        """The notifications queue's consumer (deployed; the local stack polls with chalicelib.api.notify_poller)."""
        from chalicelib.api import notify_sender as sender  # only this Lambda sends; the API function never loads it

        for record in event:
            sender.handle(services, record.body)


def _ui_routes(r: _Routes) -> None:
    def serve(name: str) -> Response:
        found = static_ui.load_asset(name, r.settings)
        headers: dict[str, str | list[str]] = {"Content-Type": found.content_type, "Cache-Control": "no-cache"}
        return Response(body=found.body, status_code=200, headers=headers)

    @r.app.route("/", methods=["GET"], content_types=ANY_TYPE)
    @json_errors
    def ui_index() -> Response:
        """The web UI's page (local stack only)."""
        return serve("index.html")

    @r.app.route("/{asset}", methods=["GET"], content_types=ANY_TYPE)
    @json_errors
    def ui_asset(asset: str) -> Response:
        """A file of the web UI (local stack only)."""
        return serve(asset)


app = create_app(Services.from_environment())
