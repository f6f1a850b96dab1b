"""Snakemake's own progress as JSON lines, for ``affect4k annotate`` (``--logger
affect4k-progress --logger-affect4k-progress-path FILE``).

The annotation app builds a missing web copy by running Snakemake and shows how far it got.
Snakemake hands a logger plugin each event with its fields (which rule a job runs, its log,
jobs done of the total), so the app reads those instead of parsing the console text, whose
wording changes between releases. Snakemake finds plugins by this module's name prefix
(``snakemake_logger_plugin_``); the reader is
:class:`affect4k.commands.annotation_app.web_copies.BuildProgress`.
"""

import json
import logging
from dataclasses import dataclass, field
from typing import Optional

from snakemake_interface_logger_plugins.base import LogHandlerBase
from snakemake_interface_logger_plugins.common import LogEvent
from snakemake_interface_logger_plugins.settings import LogHandlerSettingsBase


@dataclass
class LogHandlerSettings(LogHandlerSettingsBase):
    # Optional[str], not str | None: Snakemake makes the command-line flag from this type.
    path: Optional[str] = field(  # noqa: UP045
        default=None,
        metadata={"help": "The JSON-lines file the events are appended to", "required": True},
    )


class LogHandler(LogHandlerBase):
    """Appends one JSON object per job start, progress step and job count to ``path``."""

    def emit(self, record: logging.LogRecord) -> None:
        event = getattr(record, "event", None)
        if event == LogEvent.JOB_INFO:
            logs = getattr(record, "log", None) or []
            line = {"job": record.rule_name, "log": str(logs[0]) if logs else None}
        elif event == LogEvent.PROGRESS:
            line = {"done": record.done, "total": record.total}
        elif event == LogEvent.RUN_INFO and "total" in (getattr(record, "stats", None) or {}):
            line = {"total": record.stats["total"]}
        else:
            return
        with open(self.settings.path, "a", encoding="utf-8") as events:
            events.write(json.dumps(line) + "\n")

    @property
    def writes_to_stream(self) -> bool:
        return False

    @property
    def writes_to_file(self) -> bool:
        return False

    @property
    def has_filter(self) -> bool:
        return True  # every event, whatever --quiet says

    @property
    def has_formatter(self) -> bool:
        return True  # no text: the fields are the message

    @property
    def needs_rulegraph(self) -> bool:
        return False
