"""How `make image` drives the engine: podman's flags and config, the base's mirrors, Docker's."""

from __future__ import annotations

import resource
from pathlib import Path

import pytest

from infra.build import image
from infra.build.engine import Engine, NoEngine, podman_conf


def test_podman_builds_in_docker_format_on_the_local_base_without_pulling():
    cmd = image.build_command(Engine("podman"), image.IMAGE, image.BASE_IMAGE)
    assert cmd[0] == "build" and cmd[-1] == "."
    assert cmd[cmd.index("--format") : cmd.index("--format") + 2] == ["--format", "docker"]
    assert "--pull=never" in cmd
    assert f"BASE_IMAGE={image.BASE_IMAGE}" in cmd
    assert cmd[cmd.index("--platform") : cmd.index("--platform") + 2] == [
        "--platform",
        "linux/amd64",
    ]


def test_docker_builds_on_the_dockerfiles_default_base():
    cmd = image.build_command(Engine("docker"), image.IMAGE, None)
    assert not any(arg.startswith("BASE_IMAGE=") for arg in cmd)
    assert "--format" not in cmd and "--pull=never" not in cmd


def test_the_host_ca_bundle_is_a_build_secret_never_a_build_arg(monkeypatch, tmp_path: Path):
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    monkeypatch.setenv("PIP_CERT", str(bundle))
    cmd = image.build_command(Engine("podman"), image.IMAGE, image.BASE_IMAGE)
    assert f"id=host_ca,src={bundle}" in cmd
    assert not any(str(bundle) in arg for arg in cmd if arg != f"id=host_ca,src={bundle}")


def test_podman_conf_uses_runc_cgroupfs_and_the_hosts_hard_file_limit(tmp_path: Path):
    text = podman_conf(tmp_path).read_text()
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY:
        assert f"nofile={hard}:{hard}" in text
    assert 'runtime = "runc"' in text and 'cgroup_manager = "cgroupfs"' in text


def test_the_base_uses_the_hosts_mirrors_for_bookworm(monkeypatch, tmp_path: Path):
    (tmp_path / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.invalid/debian\nSuites: trixie\nComponents: main\n\n"
        "Types: deb\nURIs: http://mirror.invalid/debian-security\nSuites: trixie-security\n"
    )
    (tmp_path / "extra.list").write_text(
        "deb [arch=amd64] http://other.invalid/debian trixie main\n"
    )
    monkeypatch.setattr(image, "APT_SOURCES", (tmp_path / "none", tmp_path))
    assert image.debian_mirrors() == [
        "deb http://other.invalid/debian bookworm main",
        "deb http://other.invalid/debian bookworm-updates main",
        "deb http://mirror.invalid/debian-security bookworm-security main",
    ]


def test_a_host_without_apt_sources_cannot_build_the_podman_base(monkeypatch, tmp_path: Path):
    monkeypatch.setattr(image, "APT_SOURCES", (tmp_path / "none", tmp_path / "none.d"))
    with pytest.raises(NoEngine, match="Debian mirror"):
        image.debian_mirrors()
