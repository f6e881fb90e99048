"""Pipeline jobs: a parent job whose steps run as child command jobs, in the order their
wiring gives (lapis/specs/pipeline.py reads and checks the file).

Who owns what:
- ``submit`` stores the parent — its plan (each step's component, inputs, outputs,
  compute and the steps it reads from) in ``spec`` — and starts nothing;
- ``tick`` (on a thread of its own, five times a second) moves each unfinished
  parent: it submits a step as a child job once every step it reads from has
  completed (steps with nothing between them run side by side, as their computes'
  slots allow); a child's input bound to another step's output is
  ``azureml://jobs/<child>/outputs/<o>``, read through the data layer like any job's;
- the children are ordinary jobs (the scheduler and their backends run them), named
  ``<parent>-<step>`` and tagged with their parent, their MLflow runs nested under the
  parent's run.

Nothing is kept in memory: each tick reads the parent and its children, so a server
that restarts mid-pipeline goes on from where it was and never runs a completed step
again. A failed step fails the pipeline (its running steps are canceled) unless
``settings.continue_on_step_failure`` is true: then the steps that do not depend on it
go on, those that do are skipped, and the pipeline ends Failed naming them. Canceling
the parent cancels its running steps.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import yaml

from lapis.auth.service import AuthService
from lapis.entities.auth import Principal
from lapis.entities.job_status import JobStatus
from lapis.entities.jobs import Job
from lapis.errors import InvalidParameterValue, LapisError, ResourceDoesNotExist
from lapis.jobs.pipeline_steps import child_name, child_submission
from lapis.jobs.reuse import reuse_key, reused_reason
from lapis.jobs.service import JobService
from lapis.specs.component import ComponentSpec, parse_component
from lapis.specs.job import apply_overrides
from lapis.specs.pipeline import Binding, parse_pipeline
from lapis.specs.yaml_lines import safe_load
from lapis.store.sql.jobs import PIPELINE
from lapis.util import now_ms

log = logging.getLogger("lapis.pipelines")
S = JobStatus
TICK_SECONDS = 0.2  # a step starts at most this long after the steps it reads from
IDLE_SECONDS = 3.0  # nothing unfinished: look again after this (a re-submitted one waits it)
ENDED_BADLY = (S.FAILED.value, S.CANCELED.value)
# (name, version or label) -> (the component, its stored document: snapshot, conda text)
ComponentLookup = Callable[[str, str | None], tuple[ComponentSpec, dict[str, Any]]]


class PipelineRunner:
    def __init__(self, jobs: JobService, auth: AuthService, components: ComponentLookup) -> None:
        self.jobs = jobs
        self.auth = auth
        self.components = components
        self._last = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        jobs.on_parent = self.wake  # a pipeline recorded (submitted, re-submitted) moves now

    def wake(self) -> None:
        self._last = 0.0

    def start(self) -> None:
        """Move pipelines on a thread of their own: submitting a wave of steps must not
        hold up the job scheduler that starts them."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="lapis-pipelines", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.wait(TICK_SECONDS / 2):
            self.tick()

    # --- submission --------------------------------------------------------------------
    def submit(self, body: Mapping[str, Any], principal: Principal | None) -> Job:
        """``{"yaml", "source", "components": {ref: {"yaml", "source", "snapshot"...}},
        "inline": {step: {"snapshot"...}}, "input_paths": {input: uri}, "overrides"}`` —
        what the client read and uploaded for the file (lapis/sdk/pipelines.py)."""
        name, display_name, stored = self._plan(body, principal)
        return self.jobs.record_parent(name, display_name, stored, principal)

    def check(self, body: Mapping[str, Any]) -> None:
        """Everything ``submit`` checks, recording nothing (a schedule's pipeline)."""
        self._plan(body, None)

    def _plan(
        self, body: Mapping[str, Any], principal: Principal | None
    ) -> tuple[str, str | None, dict[str, Any]]:
        text, source = str(body.get("yaml")), str(body.get("source") or "<pipeline>")
        if body.get("overrides"):  # --set, and a schedule's name and tag for its run
            data = safe_load(text, source)
            if isinstance(data, dict):
                apply_overrides(data, [str(o) for o in body["overrides"]])
                text = yaml.safe_dump(data, sort_keys=False)
        sent: dict[str, dict[str, Any]] = body.get("components") or {}
        documents: dict[str, dict[str, Any]] = {}

        def registered(name: str, version: str | None, label: str | None) -> ComponentSpec:
            spec, document = self.components(name, version or label)
            documents[f"azureml:{name}:{spec.version}"] = document
            return spec

        def read_file(ref: str) -> ComponentSpec:
            part = sent[ref]
            spec = parse_component(str(part["yaml"]), str(part["source"]))
            if spec.code is not None:
                snapshot = part.get("snapshot") or {}
                if not snapshot.get("digest") or not self.jobs.has_snapshot(snapshot["digest"]):
                    raise InvalidParameterValue(f"{part['source']}: code was not uploaded")
                spec.code = str(snapshot["digest"])
            return spec

        plan = parse_pipeline(text, source, None, registered, read_file)
        for name, step in plan.steps.items():  # every step's compute exists before any runs
            compute = step.compute or str(plan.settings.get("default_compute") or "local")
            compute = compute.removeprefix("azureml:")
            if compute.lower() not in ("local", "serverless"):
                try:
                    self.jobs.compute.get(compute)
                except ResourceDoesNotExist:
                    where = f"jobs.{name}.compute" if step.compute else "settings.default_compute"
                    raise InvalidParameterValue(
                        f"{source}: {where}: compute '{compute}' does not exist "
                        "(`lapis compute list` lists them)"
                    ) from None
        inline: dict[str, dict[str, Any]] = body.get("inline") or {}
        inputs = dict(plan.inputs)
        for name, uri in (body.get("input_paths") or {}).items():  # local data, uploaded
            if name in inputs and isinstance(inputs[name], dict):
                inputs[name] = {**inputs[name], "path": uri}
        steps = {}
        for name, step in plan.steps.items():
            comp = step.component
            if step.component_ref == "inline":
                extra = inline.get(name) or {}
                document = {"spec": comp.to_dict(), **extra}
                if comp.code is not None:
                    digest = (extra.get("snapshot") or {}).get("digest")
                    if not digest or not self.jobs.has_snapshot(digest):
                        raise InvalidParameterValue(f"{source}: jobs.{name}.code was not uploaded")
                    document["spec"]["code"] = digest
            elif step.component_ref.startswith("azureml:"):
                document = documents[f"azureml:{comp.name}:{comp.version}"]
            else:
                part = sent[step.component_ref]
                document = {"spec": comp.to_dict(), "snapshot": part.get("snapshot")}
                if part.get("conda_file_text"):
                    document["conda_file_text"] = part["conda_file_text"]
            steps[name] = {
                "component": document,
                "component_ref": step.component_ref,
                "inputs": {k: _bound(v) for k, v in step.inputs.items()},
                "outputs": {k: _bound(v) for k, v in step.outputs.items()},
                "compute": step.compute,
                "environment_variables": step.environment_variables,
                "after": step.after,
                "is_deterministic": step.is_deterministic,
                "resources": step.resources,
                "distribution": step.distribution,
                "limits": step.limits,
            }
        stored = {
            "type": PIPELINE,
            "experiment_name": plan.experiment_name,
            "description": plan.description,
            "tags": plan.tags,
            "settings": plan.settings,
            "inputs": inputs,
            "outputs": {k: dict(v) for k, v in plan.outputs.items()},
            "steps": steps,
            "order": plan.order,
            "source": source,
            "command": "",
            "environment": {"label": "pipeline", "kind": "pipeline"},
            "user_id": principal.user_id if principal else None,
        }
        return plan.name or self.jobs.new_name(), plan.display_name, stored

    # --- the clock -----------------------------------------------------------------------
    def tick(self) -> None:
        """Move every unfinished pipeline. With none, the store is asked again only every
        few seconds (a submission here wakes it at once): an idle server pays nothing."""
        mono = time.monotonic()
        if mono - self._last < TICK_SECONDS:
            return
        self._last = mono
        unfinished = [s.value for s in JobStatus if not s.is_terminal]
        parents = self.jobs.store.search(statuses=unfinished, kind=PIPELINE, limit=1000)
        if not parents:
            self._last = mono + IDLE_SECONDS
        for parent in parents:
            try:
                self._advance(parent)
            except Exception:  # one pipeline's trouble must not hold up the others
                log.exception("moving pipeline %s failed", parent.name)

    def _advance(self, parent: Job) -> None:
        spec, now = parent.spec, now_ms()
        steps: dict[str, dict[str, Any]] = spec["steps"]
        children = {s: self._child(parent.name, s) for s in steps}
        status = S(parent.status)
        if status in (S.NOT_STARTED, S.QUEUED):
            for target in (S.QUEUED, S.STARTING, S.RUNNING):
                self.jobs.store.transition(
                    parent.name, target, time_ms=now, reason="running its steps"
                )
            self.jobs.tracking.update_run(parent.run_id, status="RUNNING")
            status = S.RUNNING
        active = [c for c in children.values() if c is not None and not S(c.status).is_terminal]
        if status is S.CANCEL_REQUESTED:
            self._cancel([c.name for c in active])
            if not active:
                self._end(parent, S.CANCELED, "canceled: its running steps were canceled")
            return
        bad = [s for s, c in children.items() if c is not None and c.status in ENDED_BADLY]
        go_on = bool((spec.get("settings") or {}).get("continue_on_step_failure"))
        if bad and not go_on:
            self._cancel([c.name for c in active])
            if not active:
                first = children[bad[0]]
                why = f"step {bad[0]} {first.status.lower() if first else 'failed'}"
                if first is not None and first.status_reason:
                    why += f": {first.status_reason}"
                self._end(parent, S.FAILED, why)
            return
        skipped = self._skipped(steps, children)
        for name in spec["order"]:
            if children[name] is not None or name in skipped:
                continue
            ready = all(
                children[a] is not None and children[a].status == S.COMPLETED.value  # type: ignore[union-attr]
                for a in steps[name]["after"]
            )
            if ready:
                children[name] = self._launch(parent, name)
                if children[name] is None:  # refused: the pipeline has failed, saying why
                    return
        if any(c is not None and not S(c.status).is_terminal for c in children.values()):
            return
        if any(children[s] is None and s not in skipped for s in steps):
            return  # a step was just refused: its failure shows next tick
        self._link_outputs(parent, children)
        if bad or skipped:
            said = f"steps failed: {', '.join(bad)}" if bad else ""
            if skipped:
                said += ("; " if said else "") + f"not run: {', '.join(sorted(skipped))}"
            self._end(parent, S.FAILED, said)
        else:
            self._end(parent, S.COMPLETED, None)

    def _child(self, parent: str, step: str) -> Job | None:
        try:
            return self.jobs.store.get(child_name(parent, step))
        except ResourceDoesNotExist:
            return None

    @staticmethod
    def _skipped(steps: dict[str, dict[str, Any]], children: dict[str, Job | None]) -> set[str]:
        """Steps that will never run: they read, directly or not, from a step that failed."""
        out: set[str] = set()
        changed = True
        while changed:
            changed = False
            for name, step in steps.items():
                if name in out or children[name] is not None:
                    continue
                for before in step["after"]:
                    child = children[before]
                    if before in out or (child is not None and child.status in ENDED_BADLY):
                        out.add(name)
                        changed = True
                        break
        return out

    def _launch(self, parent: Job, step: str) -> Job | None:
        """Submit one step as a child job, as the pipeline's creator — or, when an earlier
        job did the same work (lapis/jobs/reuse.py), record it reused from that job."""
        try:
            principal = (
                self.auth.acting_as(parent.created_by, "workspaces/jobs/write")
                if parent.created_by
                else None
            )
            plan = parent.spec["steps"][step]
            prepared = self.jobs.prepare(child_submission(parent, step), principal)
            if not plan.get("is_deterministic", True):
                return self.jobs.record(prepared, principal)
            label = _component_label(plan["component_ref"], plan["component"]["spec"])
            key = reuse_key(prepared.stored, label)
            force = bool((parent.spec.get("settings") or {}).get("force_rerun"))
            origin = None if force else self.jobs.store.reusable(key)
            if origin is None:
                return self.jobs.record(prepared, principal, reuse_key=key)
            why = reused_reason(origin, label)
            return self.jobs.record(prepared, principal, reused_from=(origin, why))
        except LapisError as exc:
            log.warning("pipeline %s: step %s was refused: %s", parent.name, step, exc)
            self._end(parent, S.FAILED, f"step {step} could not be submitted: {exc}")
            return None

    def _link_outputs(self, parent: Job, children: dict[str, Job | None]) -> None:
        """The pipeline's outputs are where the steps bound to them wrote theirs: so
        ``azureml://jobs/<pipeline>/outputs/<o>`` reads the step's output."""
        spec = parent.spec
        outputs = dict(spec.get("outputs") or {})
        for step, plan in spec["steps"].items():
            child = children[step]
            for name, value in plan["outputs"].items():
                if (
                    child is None
                    or not isinstance(value, dict)
                    or value.get("bind") != "parent_output"
                ):
                    continue
                made = (child.spec.get("outputs") or {}).get(name) or {}
                if made.get("dest"):
                    outputs[value["name"]] = {
                        **outputs.get(value["name"], {}),
                        "dest": made["dest"],
                        "uri": made.get("uri"),
                    }
        if outputs != spec.get("outputs"):
            self.jobs.store.set(parent.name, spec=_dumps({**spec, "outputs": outputs}))

    def _end(self, parent: Job, status: JobStatus, reason: str | None) -> None:
        now = now_ms()
        if self.jobs.store.transition(parent.name, status, time_ms=now, reason=reason):
            run = {S.COMPLETED: "FINISHED", S.FAILED: "FAILED"}.get(status, "KILLED")
            self.jobs.tracking.update_run(parent.run_id, status=run, end_time=now)
            log.info("pipeline %s %s%s", parent.name, status.value, f": {reason}" if reason else "")

    def _cancel(self, names: list[str]) -> None:
        for name in names:
            with contextlib.suppress(LapisError):  # it ended meanwhile
                self.jobs.cancel(name, None)

    # --- reading -------------------------------------------------------------------------
    def steps(self, parent: Job) -> list[dict[str, Any]]:
        """Each step in order: its status (``NotStarted``, ``Skipped`` or its job's), its
        job, component, and the steps it waits for — what ``lapis job show`` and the
        studio draw."""
        steps: dict[str, dict[str, Any]] = parent.spec.get("steps") or {}
        children = {s: self._child(parent.name, s) for s in steps}
        skipped = self._skipped(steps, children)
        out = []
        for name in parent.spec.get("order") or list(steps):
            child = children[name]
            status = child.status if child else ("Skipped" if name in skipped else "NotStarted")
            comp = steps[name]["component"]["spec"]
            out.append(
                {
                    "name": name,
                    "status": status,
                    "job": child.name if child else None,
                    "reason": child.status_reason if child else None,
                    "reused_from": child.spec.get("reused_from") if child else None,
                    "component": _component_label(steps[name]["component_ref"], comp),
                    "after": steps[name]["after"],
                }
            )
        return out


def using_component(jobs: JobService, name: str, scan: int = 500) -> list[dict[str, Any]]:
    """The recent pipelines with a step running a version of component ``name`` (by its
    registered reference or a file of the same name), newest first: the component page's
    "used by". The last ``scan`` pipelines are read — enough for a page, bounded."""
    found = []
    for job in jobs.store.search(kind=PIPELINE, limit=scan):
        for step, plan in (job.spec.get("steps") or {}).items():
            comp = (plan.get("component") or {}).get("spec") or {}
            ref = plan.get("component_ref")
            if ref != "inline" and str(comp.get("name", "")).lower() == name.lower():
                found.append({"pipeline": job.name, "display_name": job.display_name,
                              "step": step, "version": comp.get("version"),
                              "ref": ref, "status": job.status,
                              "created_at": job.created_at})  # fmt: skip
    return found


def _component_label(ref: str, comp: dict[str, Any]) -> str:
    return ref if ref != "inline" else f"inline ({comp['name']})"


def _bound(value: Any) -> Any:
    if isinstance(value, Binding):
        return {"bind": value.kind, "name": value.name, "step": value.step}
    return value


def _dumps(value: Any) -> str:
    import orjson

    return orjson.dumps(value).decode()
