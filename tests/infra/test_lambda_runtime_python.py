"""The Lambda package, built by functions/Makefile, serves a request on the runtime's own Python."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import snapshot_restore_py

from infra.deploy.lambda_package import build_package, runtime_python, runtime_version
from infra.local.paths import CONFIG_FILE
from infra.local.stack import free_port
from tests.support.control_plane import unreachable_livekit_url
from tests.support.lambda_events import LambdaContext, http_api_event

# Run by the runtime's Python inside the package, as the Lambda runtime would: the SnapStart
# library provided beside the package, both hooks run, then one API Gateway event.
PROBE = """
import importlib.util, json, sys
from snapshot_restore_py import get_after_restore, get_before_snapshot
import functions.api.handler as handler
for registry in (get_before_snapshot(), get_after_restore()):
    for func, args, kwargs in registry:
        func(*args, **kwargs)
request = json.load(sys.stdin)
reply = handler.handler(request["event"], type("Context", (), request["context"])())
print(json.dumps({
    "python": list(sys.version_info[:2]),
    "bytecode": importlib.util.cache_from_source(handler.__file__),
    "from_package": handler.__file__.startswith(sys.argv[1]),
    "status": reply["statusCode"],
    "body": json.loads(reply["body"]),
}))
"""


def test_the_built_package_serves_health_on_the_runtimes_python(tmp_path: Path) -> None:
    version, python = runtime_version(), runtime_python()
    package = tmp_path / "package"
    package.mkdir()
    build_package(package, python)
    # The managed runtime provides this library; the package itself must not carry it.
    assert not (package / "snapshot_restore_py.py").exists()
    runtime_libs = tmp_path / "runtime"
    runtime_libs.mkdir()
    shutil.copy(snapshot_restore_py.__file__, runtime_libs)

    event = http_api_event("GET", "/voice/realtime/health")
    context = vars(LambdaContext())
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "PYTHONPATH": f"{package}:{runtime_libs}",
        "PYTHONDONTWRITEBYTECODE": "1",
        "ENVIRONMENT": "local",
        "SESSIONS_TABLE": "voice-sessions-test",
        "VOICE_CONFIG_URI": str(CONFIG_FILE),
        "LIVEKIT_URL": unreachable_livekit_url(),
        "LIVEKIT_TIMEOUT_SECONDS": "1",
        # Nothing listens there: the table is unreachable, so health must say degraded.
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_MAX_ATTEMPTS": "1",
    }
    out = subprocess.run(
        [python, "-s", "-c", PROBE, str(package)],
        input=json.dumps({"event": event, "context": context}),
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    reply = json.loads(out.stdout.strip().splitlines()[-1])
    assert reply["python"] == [int(p) for p in version.split(".")]
    assert reply["from_package"]
    assert Path(reply["bytecode"]).is_file(), "no bytecode of the runtime's Python was shipped"
    assert reply["status"] == 200
    assert reply["body"]["status"] == "degraded"
    assert reply["body"]["livekit_connected"] is False
