"""Builds the worker image, localhost/voice-worker:local, and writes it as a docker archive."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

from infra.build.engine import BUILD_DIR, ROOT, Engine, NoEngine, find_engine

IMAGE = "localhost/voice-worker:local"
ARCHIVE = BUILD_DIR / "voice-worker.tar"
DOCKERFILE = Path("infra/worker/Dockerfile")
# Fargate tasks run X86_64 (the task definition's RuntimePlatform).
PLATFORM = "linux/amd64"

# podman has no registry to pull python:3.11-slim from: a Debian bookworm (Python 3.11) base is
# built with mmdebstrap from the host's own Debian mirror, cached as a tarball and imported.
BASE_IMAGE = "localhost/voice-worker-base:bookworm"
BASE_TARBALL = BUILD_DIR / "base" / "bookworm-python3.tar"
BASE_PACKAGES = "python3,python3-venv,ca-certificates"
# Like the Docker slim images: no manuals, docs or translations (copyright files stay).
BASE_DPKG_EXCLUDES = (
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/locale/*",
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
)
APT_SOURCES = (Path("/etc/apt/sources.list"), Path("/etc/apt/sources.list.d"))


def host_ca_bundle() -> Path | None:
    """The CA bundle the host's own pip trusts (a TLS-inspecting proxy's CA lives there)."""
    for var in ("PIP_CERT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
        if (value := os.environ.get(var)) and Path(value).is_file():
            return Path(value)
    system = Path("/etc/ssl/certs/ca-certificates.crt")
    return system if system.is_file() else None


def debian_mirrors() -> list[str]:
    """bookworm source lines on the mirrors this host's apt is configured with."""
    files = [APT_SOURCES[0]] if APT_SOURCES[0].is_file() else []
    if APT_SOURCES[1].is_dir():
        files += sorted(APT_SOURCES[1].glob("*.list")) + sorted(APT_SOURCES[1].glob("*.sources"))
    uris: list[str] = []
    for file in files:
        text = file.read_text(encoding="utf-8", errors="replace")
        found = re.findall(r"^URIs:\s*(.+)$", text, re.M)
        found += re.findall(r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)", text, re.M)
        uris += [u for line in found for u in line.split() if u not in uris]
    main = [u for u in uris if "security" not in u]
    security = [u for u in uris if "security" in u]
    if not main:
        raise NoEngine("building the podman base needs a Debian mirror in the host's apt sources")
    lines = [f"deb {main[0]} bookworm main", f"deb {main[0]} bookworm-updates main"]
    return [*lines, f"deb {security[0]} bookworm-security main"] if security else lines


def build_base_tarball(target: Path = BASE_TARBALL) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    cmd = ["mmdebstrap", "--quiet", "--variant=minbase", f"--include={BASE_PACKAGES}"]
    cmd += ["--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr"]
    cmd += [f"--dpkgopt={opt}" for opt in BASE_DPKG_EXCLUDES]
    cmd += ["--format=tar", "bookworm", str(partial), *debian_mirrors()]
    try:
        subprocess.run(cmd, check=True)
    except FileNotFoundError as exc:
        raise NoEngine("mmdebstrap is not installed (make image-deps)") from exc
    partial.rename(target)


def ensure_base(engine: Engine, refresh: bool = False) -> str:
    """The podman base image, imported from the cached tarball (built first if missing)."""
    if refresh:
        BASE_TARBALL.unlink(missing_ok=True)
    elif engine.image_id(BASE_IMAGE):
        return BASE_IMAGE
    if not BASE_TARBALL.exists():
        build_base_tarball()
    engine.run("import", "--change", 'CMD ["python3"]', str(BASE_TARBALL), BASE_IMAGE)
    return BASE_IMAGE


def build_command(engine: Engine, tag: str, base: str | None) -> list[str]:
    args = ["build", "--file", str(DOCKERFILE), "--tag", tag, "--platform", PLATFORM]
    if base:
        args += ["--build-arg", f"BASE_IMAGE={base}"]
    if engine.is_podman:
        # docker format keeps HEALTHCHECK; the base is local, so never pull.
        args += ["--format", "docker", "--network", "host", "--pull=never"]
    if ca := host_ca_bundle():
        args += ["--secret", f"id=host_ca,src={ca}"]
    return [*args, "."]


def build_image(
    engine: Engine, tag: str = IMAGE, *, refresh_base: bool = False, quiet: bool = False
) -> str:
    """Builds (layer-cached) and returns the image id."""
    base = ensure_base(engine, refresh_base) if engine.is_podman else None
    engine.run(
        *build_command(engine, tag, base),
        cwd=ROOT,
        stdout=subprocess.DEVNULL if quiet else None,
    )
    image_id = engine.image_id(tag)
    if image_id is None:
        raise RuntimeError(f"{engine.name} built no image tagged {tag}")
    return image_id


def write_archive(engine: Engine, tag: str, image_id: str, archive: Path = ARCHIVE) -> bool:
    """Saves the image in `docker save` format unless the archive already holds this image id."""
    stamp = archive.with_suffix(".id")
    if archive.exists() and stamp.exists() and stamp.read_text().strip() == image_id:
        return False
    archive.parent.mkdir(parents=True, exist_ok=True)
    partial = archive.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    fmt = ["--format", "docker-archive"] if engine.is_podman else []
    engine.run("save", *fmt, "--output", str(partial), tag)
    partial.rename(archive)
    stamp.write_text(image_id + "\n")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tag", default=IMAGE)
    parser.add_argument("--archive", type=Path, default=ARCHIVE)
    parser.add_argument("--no-archive", action="store_true")
    parser.add_argument("--refresh-base", action="store_true", help="podman: rebuild the base")
    args = parser.parse_args(argv)
    try:
        engine = find_engine()
    except NoEngine as exc:
        print(f"cannot build the image: {exc}", file=sys.stderr)
        return 1
    image_id = build_image(engine, args.tag, refresh_base=args.refresh_base)
    print(f"built {args.tag} ({image_id[:12]}) with {engine.name}")
    if not args.no_archive:
        saved = write_archive(engine, args.tag, image_id, args.archive)
        print(f"{'wrote' if saved else 'up to date:'} {args.archive}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
