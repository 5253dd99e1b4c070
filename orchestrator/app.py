"""The Quart application: routes, auth, errors and OpenAPI, wired from explicit dependencies."""

from __future__ import annotations

import logging
from pathlib import Path

import trio
from quart_cors import cors
from quart_schema import Info, QuartSchema
from quart_trio import QuartTrio

from orchestrator.apps import AppManager
from orchestrator.audit import AuditLog
from orchestrator.auth import Tokens, install_auth
from orchestrator.config import OrchestratorSettings
from orchestrator.errors import install_error_handlers
from orchestrator.kernel_link import KernelLink
from orchestrator.metrics import WebMetrics
from orchestrator.ratelimit import RateLimiter, install_rate_limit
from orchestrator.registry import Registry
from orchestrator.routes.admin import admin_routes
from orchestrator.routes.apps import apps_routes
from orchestrator.routes.kernel import kernel_routes
from orchestrator.routes.metrics import metrics_routes
from orchestrator.routes.registry import registry_routes
from orchestrator.routes.services import services_routes
from orchestrator.routes.sessions import sessions_routes
from orchestrator.routes.status import status_routes
from orchestrator.routes.stream import stream_routes
from orchestrator.services import ServiceContexts, ServiceRegistry
from orchestrator.services.auth import AuthStore, auth_service
from orchestrator.services.filesystem import filesystem_service
from orchestrator.services.http import http_service
from orchestrator.services.proc import proc_service
from orchestrator.services.storage import storage_service
from orchestrator.services.system import AppLogs, system_service
from orchestrator.sessions import SessionStore
from sandbox import installed_version

__all__ = ["create_app", "default_apps_dir", "default_frontend_dir"]

logger = logging.getLogger("agentos.orchestrator")


def default_apps_dir() -> Path:
    """The prebuilt apps: apps/ beside the packages."""
    return Path(__file__).resolve().parent.parent / "apps"


def default_frontend_dir() -> Path:
    """Where ``make setup`` builds the desktop: frontend/dist beside the packages."""
    return Path(__file__).resolve().parent.parent / "frontend" / "dist"


def create_app(settings: OrchestratorSettings, *, link: KernelLink, tokens: Tokens) -> QuartTrio:
    """Build the web application around a kernel link and a set of tokens."""
    frontend = settings.frontend_dir or default_frontend_dir()
    assets = frontend / "assets"
    app = QuartTrio(
        "orchestrator",
        static_folder=str(assets) if assets.is_dir() else None,
        static_url_path="/assets",
    )
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    version = installed_version()
    QuartSchema(
        app,
        info=Info(title="AgentOS", version=version),
        openapi_path="/openapi.json",
        swagger_ui_path="/docs",
        redoc_ui_path=None,
        scalar_ui_path=None,
        security_schemes={"bearer": {"type": "http", "scheme": "bearer"}},
        security=[{"bearer": []}],
    )
    install_error_handlers(app)
    metrics = WebMetrics()
    metrics.install(app)
    if settings.rate_limit > 0:
        install_rate_limit(app, RateLimiter(settings.rate_limit, settings.rate_burst))
    # The API's description is no secret; the docs' "Authorize" takes the token for calls.
    install_auth(app, tokens, public_endpoints={"openapi", "swagger_ui"})
    if settings.cors_origins:  # off unless configured: no other site's page may call us
        app = cors(
            app, allow_origin=settings.cors_origins, allow_credentials=False,
            allow_headers=["Authorization", "Content-Type"],
            allow_methods=["GET", "POST", "PUT", "DELETE"], max_age=600,
        )  # fmt: skip
    app.register_blueprint(status_routes(link, version=version, frontend_dir=frontend))
    app.register_blueprint(kernel_routes(link))
    app.register_blueprint(metrics_routes(link, metrics))
    auth = AuthStore(settings.state_dir / "auth.sqlite3")
    registry = ServiceRegistry.of(
        [
            system_service(AppLogs()),
            storage_service(),
            filesystem_service(),
            auth_service(auth),
            proc_service(),
            http_service(),
        ]
    )
    contexts = ServiceContexts(link)
    apps = AppManager(
        link, allowed_policies=settings.app_policies,
        freeze_background=settings.freeze_background,
    )  # fmt: skip
    app.register_blueprint(apps_routes(apps, registry))
    packages = Registry(settings.state_dir / "registry")
    app.register_blueprint(registry_routes(packages, apps, registry))
    sessions = SessionStore(settings.state_dir / "sessions")
    app.register_blueprint(sessions_routes(sessions, apps, registry))

    following = trio.CancelScope()

    async def follow() -> None:
        with following:
            await apps.watch()

    @app.before_serving
    async def follow_apps() -> None:
        app.nursery.start_soon(follow)

    @app.after_serving
    async def stop_following() -> None:
        following.cancel()

    @app.before_serving
    async def seed_registry() -> None:
        apps_dir = settings.apps_dir or default_apps_dir()
        if saved := await packages.seed(apps_dir, server_tools=registry.tool_ids()):
            logger.info("seeded the registry with %s", ", ".join(saved))

    app.register_blueprint(services_routes(registry, contexts))
    app.register_blueprint(
        stream_routes(link, tokens, registry, contexts, cors_origins=settings.cors_origins)
    )

    @app.after_serving
    async def close_stores() -> None:
        auth.close()

    app.register_blueprint(admin_routes(link, AuditLog(settings.state_dir / "audit.jsonl")))
    return app
