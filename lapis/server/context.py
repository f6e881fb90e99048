"""The services one server process holds, built once from Settings at start-up."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lapis.artifacts.store import ArtifactStore
from lapis.auth.service import AuthService, IssuedToken
from lapis.compute.service import ComputeService
from lapis.config import Settings
from lapis.endpoints.control.endpoints import EndpointService
from lapis.endpoints.data.routing import RouteTable
from lapis.endpoints.data.telemetry import Telemetry
from lapis.environments.service import EnvironmentService
from lapis.jobs.service import JobService
from lapis.registry.models import ModelService
from lapis.registry.service import RegistryService
from lapis.server.home import make_private
from lapis.store.sealed import Sealer
from lapis.store.sql.engine import Database
from lapis.store.sql.jobs import JobStore
from lapis.store.sql.principals import PrincipalStore
from lapis.tracking.logged_models import LoggedModelService
from lapis.tracking.service import TrackingService


@dataclass
class Workspace:
    settings: Settings
    db: Database
    auth: AuthService
    tracking: TrackingService
    artifacts: ArtifactStore
    logged_models: LoggedModelService
    registry: RegistryService
    compute: ComputeService
    environments: EnvironmentService
    jobs: JobService
    models: ModelService
    endpoints: EndpointService
    bootstrap: IssuedToken | None = None
    scheduler: Any = None
    # Online serving: the route table both planes share (lapis/endpoints/data/routing.py),
    # the deployment control plane, per-deployment telemetry, and batch endpoints.
    routes: RouteTable = field(default_factory=RouteTable)
    deployments: Any = None
    instance_manager: Any = None
    telemetry: Telemetry = field(default_factory=Telemetry)
    batch: Any = None
    audit: Any = None  # lapis.server.audit.AuditWriter, started with the server

    @classmethod
    def open(cls, settings: Settings) -> Workspace:
        """Connect, migrate, and make sure the defaults (admin, Default experiment) exist."""
        make_private(settings.home)
        db = Database(settings.resolved_database_url)
        db.migrate()
        make_private(settings.home)  # the database files exist now
        sealer = Sealer.for_home(settings.home)
        auth = AuthService(PrincipalStore(db))
        tracking = TrackingService(db)
        tracking.ensure_default_experiment()
        compute = ComputeService(db)
        environments = EnvironmentService(db, settings.home / "envs")
        artifacts = ArtifactStore(settings.resolved_artifact_root)
        registry = RegistryService(tracking)
        jobs = JobService(JobStore(db), tracking, compute, environments, settings.home)
        ws = cls(
            settings=settings,
            db=db,
            auth=auth,
            tracking=tracking,
            artifacts=artifacts,
            logged_models=LoggedModelService(tracking),
            registry=registry,
            compute=compute,
            environments=environments,
            jobs=jobs,
            models=ModelService(registry, artifacts, jobs),
            endpoints=EndpointService(db, sealer),
        )
        from lapis.endpoints.control.deployments import DeploymentService

        ws.deployments = DeploymentService(db, ws.endpoints, ws.models, environments, settings.home)
        ws.deployments.sandbox = settings.job_sandbox
        from lapis.endpoints.batch.service import BatchService

        ws.batch = BatchService(
            db, jobs, ws.models, artifacts, environments, compute, settings.home
        )
        from lapis.server.audit import AuditWriter
        from lapis.store.sql.audit import AuditStore

        ws.audit = AuditWriter(AuditStore(db))
        ws.endpoints.store.reseal_plaintext_keys()
        ws.models.fail_interrupted_uploads()
        ws.bootstrap = auth.bootstrap_admin()
        return ws

    def start_scheduler(self, url: str, ca_bundle: str | None = None) -> None:
        """Run jobs: only the process serving ``url`` does this (jobs call back to it)."""
        from lapis.jobs.scheduler import JobScheduler

        self.scheduler = JobScheduler(
            self.jobs,
            self.auth,
            self.artifacts,
            url,
            sandbox=self.settings.job_sandbox,
            ca_bundle=ca_bundle,
        )
        self.scheduler.start()

    def start_serving(self) -> None:
        """Run online deployments' instances (lapis/endpoints/control/instances.py): only the
        process serving the API does this, since the scoring route lives there too."""
        from lapis.endpoints.control.instances import InstanceManager

        self.instance_manager = InstanceManager(self.deployments, self.routes)
        self.instance_manager.start()

    def close(self) -> None:
        if self.audit is not None:
            self.audit.stop()
        if self.instance_manager is not None:
            self.instance_manager.stop()
        if self.scheduler is not None:
            self.scheduler.stop()
        self.db.dispose()
