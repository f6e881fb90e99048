"""A document's ``type``, read before anything else in it.

Azure ML files say what they are with ``type:`` (or, failing that, with the
``$schema`` URL their editor validated them against), and every other key
means something only for that type: ``jobs:`` belongs to a pipeline,
``min_instances:`` to a cluster. So the type is read first, and a type Lapis
knows of but does not run yet gets one line naming it and what Lapis does
run — never a complaint about the first key that type happens to have.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lapis.errors import InvalidParameterValue
from lapis.specs.yaml_lines import Located, suggest

_SCHEMA_FILE = re.compile(r"/([A-Za-z]+)\.schema\.json\s*$")


@dataclass(frozen=True)
class Kinds:
    """The types of one kind of document (jobs, computes): which Lapis reads, which
    Azure ML has that Lapis does not run yet (each with a note), and which ``$schema``
    file names imply which type when ``type:`` is left out."""

    what: str  # "job", "compute"
    supported: tuple[str, ...]
    not_yet: Mapping[str, str] = field(default_factory=dict)
    schemas: Mapping[str, str] = field(default_factory=dict)  # lower-cased file stem -> type
    default: str | None = None

    def of(self, loc: Located, data: Mapping[str, Any], *, partial: bool = False) -> str | None:
        """The document's type (lower-cased), or an error at ``type:``'s line."""
        raw = data.get("type")
        if raw is None:
            kind = self._from_schema(data.get("$schema"))
            if kind is None:
                if partial:
                    return None
                if self.default is None:
                    raise self._error(
                        loc, f"'type' is required: one of {', '.join(self.supported)}"
                    )
                kind = self.default
        elif not isinstance(raw, str) or not raw.strip():
            raise self._error(loc, f"'type' must be one of {', '.join(self.supported)}")
        else:
            kind = raw.strip().lower()
        if kind in self.supported:
            return kind
        runs = ", ".join(self.supported)
        if kind in self.not_yet:
            note = self.not_yet[kind]
            raise self._error(
                loc,
                f"{kind} {self.what}s are not supported yet"
                + (f" ({note})" if note else "")
                + f"; supported: {runs}",
            )
        known = [*self.supported, *self.not_yet]
        raise self._error(
            loc,
            f"'{raw}' is not an Azure ML {self.what} type{suggest(kind, known)}; "
            f"Azure ML's {self.what} types: {', '.join(sorted(known))} (Lapis runs: {runs})",
        )

    def _from_schema(self, schema: object) -> str | None:
        if not isinstance(schema, str):
            return None
        m = _SCHEMA_FILE.search(schema)
        return self.schemas.get(m.group(1).lower()) if m else None

    @staticmethod
    def _error(loc: Located, message: str) -> InvalidParameterValue:
        return InvalidParameterValue(
            f"{loc.where(('type',))}: {message}", file=loc.source, key="type"
        )


JOBS = Kinds(
    what="job",
    supported=("command",),
    not_yet={
        "pipeline": "a pipeline is submitted whole, with lapis job create or jobs.create_or_update",
        "sweep": "hyperparameter sweeps come in a later release",
        "automl": "",
        "spark": "",
    },
    schemas={
        "commandjob": "command",
        "pipelinejob": "pipeline",
        "sweepjob": "sweep",
        "sparkjob": "spark",
        "automljob": "automl",
        "autoforecastingjob": "automl",
        "autoclassificationjob": "automl",
        "autoregressionjob": "automl",
    },
    default="command",
)

COMPUTES = Kinds(
    what="compute",
    supported=("computeinstance", "amlcompute"),
    not_yet={
        "virtualmachine": "attached virtual machines",
        "kubernetes": "attached Kubernetes clusters",
        "synapsespark": "attached Synapse Spark pools",
    },
    schemas={
        "computeinstance": "computeinstance",
        "amlcompute": "amlcompute",
        "vmcompute": "virtualmachine",
        "virtualmachinecompute": "virtualmachine",
        "kubernetescompute": "kubernetes",
        "synapsesparkcompute": "synapsespark",
    },
)
