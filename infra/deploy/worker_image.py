"""Builds the worker image, pushes it to the stack's ECR repository and records its tag."""

from __future__ import annotations

import argparse
import base64
import subprocess
from pathlib import Path

from infra.build.engine import NoEngine, find_engine
from infra.build.image import build_image
from infra.deploy.samconfig import SAMCONFIG, read_settings, set_parameter
from infra.deploy.stack import session, stack_outputs


def image_tag(cwd: Path | None = None) -> str:
    """The commit, marked -dirty when the tree has uncommitted changes, so a tag names one build."""
    git = ["git", "-C", str(cwd or Path.cwd())]
    commit = subprocess.run(
        [*git, "rev-parse", "--short=12", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run([*git, "status", "--porcelain"], capture_output=True, text=True).stdout
    return f"{commit}-dirty" if dirty.strip() else commit


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samconfig", type=Path, default=SAMCONFIG)
    parser.add_argument("--tag", help="image tag (default: the git commit)")
    args = parser.parse_args(argv)

    # The engine first: no point asking AWS for a login that nothing here can use.
    try:
        engine = find_engine()
    except NoEngine as exc:
        raise SystemExit(f"cannot build the worker image: {exc}") from exc
    settings = read_settings(args.samconfig)
    aws = session(settings)
    repository = stack_outputs(settings, aws.client("cloudformation"))["WorkerRepositoryUri"]
    tag = args.tag or image_tag()
    image = f"{repository}:{tag}"

    auth = aws.client("ecr").get_authorization_token()["authorizationData"][0]
    user, password = base64.b64decode(auth["authorizationToken"]).decode().split(":", 1)
    registry = repository.split("/", 1)[0]
    engine.run(
        "login", "--username", user, "--password-stdin", registry, input=password, capture=True
    )
    # The same build as `make image` (Docker, else podman), for linux/amd64 like the Fargate tasks.
    build_image(engine, image)
    engine.run("push", image)
    set_parameter(args.samconfig, "WorkerImageTag", tag)
    print(f"pushed {image}; WorkerImageTag={tag} recorded in {args.samconfig}: run `make deploy`")


if __name__ == "__main__":
    main()
