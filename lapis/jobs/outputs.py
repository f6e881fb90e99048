"""A job's outputs as people fetch them: listed and streamed by the server from wherever
they were kept — the default datastore's ``azureml/<job>/<output>/`` (what Azure does),
an output's own ``path:`` on any datastore, or, for jobs stored before outputs moved to
the datastore, the run's ``named-outputs/<output>/``.

``lapis job download``, the SDK's ``jobs.download`` and the studio's job page read
through here, so an output kept on a datastore with a credential is read only by a
principal whose role may use that credential — the same rule as a job input's.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from lapis.data.job_data import ARTIFACTS
from lapis.data.reading import SourceFiles
from lapis.entities.auth import Principal
from lapis.entities.jobs import Job
from lapis.errors import InvalidParameterValue
from lapis.jobs.service import JobService


class OutputFiles:
    def __init__(self, jobs: JobService) -> None:
        self.jobs = jobs

    def _locate(self, job: Job, output: str, principal: Principal | None) -> SourceFiles:
        data = self.jobs.data
        if data is None:
            raise InvalidParameterValue("this server reads no datastores")
        where = self.jobs.output_location(job, output)
        label = f"output {output} of job {job.name}"
        if where["datastore"] != ARTIFACTS:
            data.check_usable(str(where["datastore"]), principal, label)
        return SourceFiles(data, where, label)

    def files(self, name: str, output: str, principal: Principal | None) -> dict[str, Any]:
        """Every file of the output (path relative to it, size); none before it is written."""
        job = self.jobs.get(name, events=False)
        spec = (job.spec.get("outputs") or {}).get(output, {})
        _, found = self._locate(job, output, principal).files(missing_ok=True)
        return {"job": job.name, "output": output, "uri": spec.get("uri"), "files": found}

    def stream(
        self, name: str, output: str, path: str, principal: Principal | None
    ) -> tuple[int | None, Iterator[bytes]]:
        job = self.jobs.get(name, events=False)
        return self._locate(job, output, principal).stream(path)

    def stored(self, name: str) -> dict[str, str]:
        """The outputs kept outside the run's artifacts, with the URI each was written to."""
        job = self.jobs.get(name, events=False)
        return {
            o: str(spec.get("uri") or "")
            for o, spec in (job.spec.get("outputs") or {}).items()
            if spec.get("dest")
        }
