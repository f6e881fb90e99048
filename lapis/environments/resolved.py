"""What an environment reference resolves to, and Docker build contexts' resolution."""

from __future__ import annotations

from dataclasses import dataclass

from lapis.errors import InvalidParameterValue
from lapis.specs.environment import EnvironmentSpec


@dataclass(frozen=True)
class ResolvedEnvironment:
    """What a job runs in: Lapis' own interpreter (``system``), a uv-built folder, or an
    image built from a Docker context (``docker``)."""

    kind: str  # "system" | "built" | "docker"
    spec: EnvironmentSpec | None
    digest: str | None  # docker: the build context's snapshot digest
    label: str  # for people: "lapis-sklearn:1", "inline 3f2a9c1b", "system"
    image: str | None = None  # docker: the image the context builds (lapis-env:…)
    ref: str | None = None  # a registered or curated one: "NAME:VERSION", to name it again
    dockerfile: str | None = None  # docker: the Dockerfile's path inside the context


def docker_environment(sent: object, source: str) -> ResolvedEnvironment:
    """A Docker build context the client uploaded; refused when no engine answers."""
    from lapis.environments import docker

    problem = docker.engine_problem()
    if problem is not None:
        raise InvalidParameterValue(
            f"{source}: environment.build: is a Docker build context, which needs a Docker "
            f"engine on the server, and none answers ({problem}); give 'conda_file' "
            "(or 'pip') and optionally 'image' instead, or start a Docker engine"
        )
    if not isinstance(sent, dict) or not isinstance(sent.get("digest"), str):
        raise InvalidParameterValue(
            f"{source}: environment.build: the context folder must be uploaded and sent as "
            "'build_context' {digest, dockerfile_path} (the CLI and SDK do this)"
        )
    try:
        dockerfile = docker.check_dockerfile(sent.get("dockerfile_path"))
    except ValueError as exc:
        raise InvalidParameterValue(f"{source}: environment.build: {exc}") from None
    digest = str(sent["digest"])
    return ResolvedEnvironment(
        "docker",
        None,
        digest,
        f"docker {digest[:12]}",
        docker.image_tag(digest, dockerfile),
        dockerfile=dockerfile,
    )
