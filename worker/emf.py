"""CloudWatch embedded metric format (EMF): one JSON line per record on stdout, no AWS SDK."""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any, Literal, TextIO

from worker.settings import SERVICE_NAME

Unit = Literal["Count", "Milliseconds", "Seconds", "None"]

_write_lock = threading.Lock()


class EmfEmitter:
    """Writes metrics under one namespace with the dimension set [["service"]], and a second set
    [["service", *dimensions]] when a record names dimensions (an agent version's calls)."""

    def __init__(
        self, namespace: str, *, service: str = SERVICE_NAME, stream: TextIO | None = None
    ) -> None:
        self.namespace = namespace
        self.service = service
        self._stream = stream

    def emit(
        self,
        metrics: dict[str, tuple[float, Unit]],
        dimensions: dict[str, str] | None = None,
        **properties: Any,
    ) -> dict[str, Any]:
        """Writes one record; `properties` ride along as searchable, non-dimension fields."""
        dimension_sets = [["service"]]
        if dimensions:
            dimension_sets.append(["service", *dimensions])
        record: dict[str, Any] = {
            "_aws": {
                "Timestamp": int(time.time() * 1000),
                "CloudWatchMetrics": [
                    {
                        "Namespace": self.namespace,
                        "Dimensions": dimension_sets,
                        "Metrics": [{"Name": n, "Unit": u} for n, (_, u) in metrics.items()],
                    }
                ],
            },
            "service": self.service,
            **(dimensions or {}),
        }
        record.update({k: v for k, v in properties.items() if v is not None})
        record.update({name: value for name, (value, _) in metrics.items()})
        line = json.dumps(record, separators=(",", ":"))
        stream = self._stream or sys.stdout
        # Job processes share stdout with the main process; one write per line keeps records whole.
        with _write_lock:
            stream.write(line + "\n")
            stream.flush()
        return record
