"""The shared Docker fixtures, for the docker backend's tests in this package."""

from tests.support.docker import docker_client, docker_container, docker_image  # noqa: F401
