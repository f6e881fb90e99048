"""The services one server process holds, built once from Settings at start-up.

``Workspace.open`` builds the services (no threads, no child processes), so
tools and tests can hold a workspace without running anything. ``start``
begins the work that runs beside the API — the audit writer, the job
scheduler, the deployment instances — and ``stop`` ends it; the app's
lifespan (lapis/server/app.py) calls both, so whoever runs the app (uvicorn
from ``lapis server``, a test in-process) gets the same server life.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lapis.artifacts.store import ArtifactStore
from lapis.auth.service import AuthService, IssuedToken
from lapis.compute.service import ComputeService
from lapis.config import Settings
from lapis.data.assets import DataAssetService
from lapis.data.datastores import DatastoreService
from lapis.data.job_data import JobData
from lapis.endpoints.batch.service import BatchService
from lapis.endpoints.control.deployments import DeploymentService
from lapis.endpoints.control.endpoints import EndpointService
from lapis.endpoints.control.instances import InstanceManager
from lapis.endpoints.data.routing import RouteTable
from lapis.endpoints.data.telemetry import Telemetry
from lapis.environments.service import EnvironmentService
from lapis.jobs.pipelines import PipelineRunner
from lapis.jobs.scheduler import JobScheduler
from lapis.jobs.schedules import ScheduleService
from lapis.jobs.service import JobService
from lapis.notebooks.confine import Confinement
from lapis.notebooks.fileshare import FileShare
from lapis.notebooks.lab import LabManager
from lapis.registry.components import ComponentService
from lapis.registry.models import ModelService
from lapis.registry.service import RegistryService
from lapis.registry.webhooks import WebhookService
from lapis.server.audit import AuditWriter
from lapis.server.home import make_private
from lapis.store.sealed import Sealer
from lapis.store.sql.audit import AuditStore
from lapis.store.sql.engine import Database
from lapis.store.sql.jobs import JobStore
from lapis.store.sql.principals import PrincipalStore
from lapis.tracking.logged_models import LoggedModelService
from lapis.tracking.service import TrackingService
from lapis.tracking.traces import TraceService


@dataclass
class Workspace:
    settings: Settings
    db: Database
    auth: AuthService
    tracking: TrackingService
    artifacts: ArtifactStore
    logged_models: LoggedModelService
    traces: TraceService
    registry: RegistryService
    webhooks: WebhookService
    datastores: DatastoreService
    data: DataAssetService
    components: ComponentService
    schedules: ScheduleService
    pipelines: PipelineRunner
    compute: ComputeService
    environments: EnvironmentService
    jobs: JobService
    models: ModelService
    endpoints: EndpointService
    deployments: DeploymentService
    batch: BatchService
    files: FileShare
    audit: AuditWriter  # its thread runs between start() and stop()
    bootstrap: IssuedToken | None = None
    # Online serving: the route table both planes share (lapis/endpoints/data/routing.py)
    # and per-deployment telemetry.
    routes: RouteTable = field(default_factory=RouteTable)
    telemetry: Telemetry = field(default_factory=Telemetry)
    # Set by start(), in the one process that serves the API (jobs and instances call it)
    scheduler: JobScheduler | None = None
    instance_manager: InstanceManager | None = None
    labs: LabManager | None = None  # each running compute instance's JupyterLab

    @classmethod
    def open(cls, settings: Settings) -> Workspace:
        """Connect, migrate, and make sure the defaults (admin, Default experiment) exist."""
        make_private(settings.home)
        db = Database(settings.resolved_database_url)
        db.migrate()
        make_private(settings.home)  # the database files exist now
        from lapis.compute.ray import cluster as ray_cluster

        ray_cluster.configure(settings.home / "clusters")
        from lapis.compute import instance

        instance.configure(settings.home / "computes", settings.home / "fileshare",
                           [str(settings.home)] if settings.job_sandbox else None)  # fmt: skip
        sealer = Sealer.for_home(settings.home)
        auth = AuthService(PrincipalStore(db))
        tracking = TrackingService(db)
        tracking.ensure_default_experiment()
        compute = ComputeService(db)
        environments = EnvironmentService(db, settings.home / "envs")
        artifacts = _artifact_store(settings.resolved_artifact_root)
        registry = RegistryService(tracking)
        webhooks = WebhookService(db, sealer, settings.webhooks_private)
        datastores = DatastoreService(
            db, sealer, settings.resolved_artifact_root, settings.home,
            settings.local_datastore_roots,
        )  # fmt: skip
        registry.notify = _announcer(webhooks)
        jobs = JobService(JobStore(db), tracking, compute, environments, settings.home)
        data = DataAssetService(db, datastores, artifacts)
        jobs.data = JobData(datastores, data, auth.can, jobs.output_source)
        endpoints = EndpointService(db, sealer)
        models = ModelService(registry, artifacts, jobs)
        components = ComponentService(db, jobs.has_snapshot)
        deployments = DeploymentService(db, endpoints, models, environments, settings.home)
        deployments.sandbox = settings.job_sandbox
        ws = cls(
            settings=settings,
            db=db,
            auth=auth,
            tracking=tracking,
            artifacts=artifacts,
            logged_models=LoggedModelService(tracking),
            traces=TraceService(tracking, artifacts),
            registry=registry,
            webhooks=webhooks,
            datastores=datastores,
            data=data,
            components=components,
            schedules=ScheduleService(db, jobs, auth),
            pipelines=PipelineRunner(jobs, auth, components.spec),
            compute=compute,
            environments=environments,
            jobs=jobs,
            models=models,
            endpoints=endpoints,
            deployments=deployments,
            batch=BatchService(db, jobs, models, artifacts, environments, compute, settings.home),
            files=FileShare(settings.home / "fileshare", auth.can),
            audit=AuditWriter(AuditStore(db)),
        )
        ws.endpoints.store.reseal_plaintext_keys()
        ws.models.fail_interrupted_uploads()
        jobs.pipelines = ws.pipelines.submit
        ws.schedules.check_pipeline = ws.pipelines.check
        ws.bootstrap = auth.bootstrap_admin()
        return ws

    def start(self, url: str, ca_bundle: str | None = None) -> None:
        """Begin the work beside the API: audit writer, job scheduler, deployment instances.

        Only the process serving ``url`` does this: jobs and instances call back to it.
        """
        self.audit.start()
        self.webhooks.start()  # resumes deliveries a previous server left pending
        if self.scheduler is None:
            self.scheduler = JobScheduler(
                self.jobs,
                self.auth,
                self.artifacts,
                url,
                sandbox=self.settings.job_sandbox,
                ca_bundle=ca_bundle,
            )
            self.scheduler.clocks.append(self.schedules.tick)
            self.scheduler.start()  # reconciles the jobs the last server left first
            self.pipelines.start()
        if self.instance_manager is None:
            self.instance_manager = InstanceManager(self.deployments, self.routes)
            self.instance_manager.start()
        if self.labs is None:
            self.labs = LabManager(self.compute, self.files, self.settings.home,
                                   self.settings.host, self._confinement(),
                                   self.settings.jupyterlab)  # fmt: skip
            self.jobs.ssh_host = self.labs.ssh_host
            self.compute.lifecycle.activity = self.labs.activity
            self.compute.applications = self.labs.applications
            self.compute.lifecycle.changed.append(self.labs.wake)
            self.labs.start()

    def _confinement(self) -> Confinement | None:
        """The sandbox of workstation processes (kernels, terminals, SSH sessions, custom
        applications): jobs' rules — the home and a local artifact root out of reach."""
        if not self.settings.job_sandbox:
            return None
        home = self.settings.home
        deny = [str(home)]
        if self.artifacts.is_local:
            deny.append(self.artifacts.root)
        shared = home / "notebooks" / "jupyter"
        shared.mkdir(parents=True, exist_ok=True)
        return Confinement(tuple(deny), (str(self.environments.envs_root),), (str(shared),))

    def stop(self) -> None:
        """End what ``start`` began (each once): instances, scheduler, then the audit trail."""
        if self.labs is not None:
            self.labs.stop()
            self.labs = None
        if self.instance_manager is not None:
            self.instance_manager.stop()
            self.instance_manager = None
        self.pipelines.stop()
        if self.scheduler is not None:
            self.scheduler.stop()
            self.scheduler = None
        self.webhooks.stop()
        self.audit.stop()

    def close(self) -> None:
        self.stop()
        self.db.dispose()


def _artifact_store(root: str) -> ArtifactStore:
    """The artifact store, or one line saying why it cannot be opened (no credentials for
    an s3:// root, a folder that cannot be made); a missing fsspec backend stays an
    ImportError, which the CLI turns into the package to install."""
    from lapis.errors import LapisError

    try:
        return ArtifactStore(root)
    except ImportError:
        raise
    except Exception as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise LapisError(f"cannot open the artifact root {root}: {reason}") from None


def _announcer(webhooks: WebhookService) -> Callable[[str, str, dict[str, Any]], None]:
    """Registry events to the webhook outbox; a failure to queue one is logged, never
    turned into a failure of the registry change that already happened."""

    def announce(entity: str, action: str, data: dict[str, Any]) -> None:
        try:
            webhooks.emit(entity, action, data)
        except Exception:
            logging.getLogger("lapis.webhooks").exception("queueing %s.%s", entity, action)

    return announce
