"""Agent rules: create, publish immutable versions, set / promote / roll back traffic, pick a version."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

from functions.agents.traffic import assigned_version, checked_split
from functions.domain.agents import (
    AgentRecord,
    AgentVersionRecord,
    Allocation,
    ChosenVersion,
    EvalResult,
    TrafficAction,
    TrafficEntry,
)
from functions.domain.errors import (
    ConfigUnavailable,
    DependencyUnavailable,
    EvaluationRequired,
    InvalidRequest,
    NotFound,
    NothingToRollBack,
    RevisionRequired,
    StaleRevision,
)
from functions.observability import logger
from functions.sessions.ports import AgentStorage
from functions.sessions.translate import translated
from functions.store.errors import Contended
from voice.agents import AgentSpec, SpecError, resolve_spec
from voice.config import ConfigError, LoadedConfig

# Racing publishes retry with the next number; each loser of a round needs one more round.
PUBLISH_ATTEMPTS = 32
# Who the history says made an automatic rollback.
MONITOR_ACTOR = "monitor"


def new_agent_id() -> str:
    return f"agt_{secrets.token_hex(8)}"


class AgentService:
    def __init__(
        self,
        store: AgentStorage,
        config: Callable[[], LoadedConfig],
        clock: Callable[[], datetime],
    ) -> None:
        self._store = store
        self._config = config
        self._clock = clock

    # -- agents -------------------------------------------------------------------------------

    @translated
    def create(self, owner: str, name: str) -> AgentRecord:
        rec = AgentRecord(
            agent_id=new_agent_id(),
            owner=owner,
            name=name,
            created_at=self._clock(),
            created_by=owner,
        )
        if not self._store.create_agent(rec):
            raise DependencyUnavailable("a new agent id collided with another; try again")
        logger.info("agent created", extra={"agent_id": rec.agent_id})
        return rec

    @translated
    def list(self, owner: str) -> list[AgentRecord]:
        return self._store.list_agents(owner)

    @translated
    def get(self, owner: str, agent_id: str) -> AgentRecord:
        rec = self._store.get_agent(agent_id)
        # Another account's agent is reported exactly like one that does not exist.
        if rec is None or rec.owner != owner:
            raise NotFound(f"no agent {agent_id}; GET /voice/realtime/agents lists yours")
        return rec

    # -- versions -----------------------------------------------------------------------------

    @translated
    def publish(
        self, owner: str, agent_id: str, changes: dict[str, Any], note: str | None = None
    ) -> AgentVersionRecord:
        """A new immutable version: `changes` over the deployment config, validated, numbered."""
        agent = self.get(owner, agent_id)
        spec = self._resolved(changes)
        for _ in range(PUBLISH_ATTEMPTS):
            number = agent.latest_version + 1
            now = self._clock()
            rec = AgentVersionRecord(
                agent_id=agent_id,
                version=number,
                spec=spec,
                created_at=now,
                created_by=owner,
                note=note,
            )
            first = None
            if number == 1:
                # The first version takes all the traffic: an agent answers once it has one.
                first = Allocation(
                    agent_id=agent_id,
                    revision=1,
                    entries=[TrafficEntry(version=1, percent=100)],
                    action="publish",
                    at=now,
                    actor=owner,
                )
            try:
                if self._store.publish(rec, first):
                    logger.info(
                        "agent version published", extra={"agent_id": agent_id, "version": number}
                    )
                    return rec
            except Contended:
                pass
            agent = self.get(owner, agent_id)
        raise DependencyUnavailable(
            "too many versions of this agent are being published at once; try again"
        )

    @translated
    def versions(self, owner: str, agent_id: str) -> list[AgentVersionRecord]:
        self.get(owner, agent_id)
        return self._store.list_versions(agent_id)

    @translated
    def version(self, owner: str, agent_id: str, version: int) -> AgentVersionRecord:
        self.get(owner, agent_id)
        rec = self._store.get_version(agent_id, version)
        if rec is None:
            raise NotFound(f"agent {agent_id} has no version {version}")
        return rec

    # -- evaluations --------------------------------------------------------------------------

    @translated
    def record_eval(
        self, owner: str, agent_id: str, version: int, run: dict[str, Any]
    ) -> EvalResult:
        """Keeps a run (suite, mode, pass_rate, threshold, scenarios, runs, failed) as the
        version's latest evaluation; a later run replaces it."""
        self.version(owner, agent_id, version)
        result = EvalResult(
            agent_id=agent_id,
            version=version,
            passed=run["pass_rate"] >= run["threshold"],
            ran_at=self._clock(),
            ran_by=owner,
            **run,
        )
        self._store.put_eval(result)
        logger.info(
            "agent version evaluated",
            extra={"agent_id": result.agent_id, "version": result.version, "passed": result.passed},
        )
        return result

    @translated
    def version_with_eval(
        self, owner: str, agent_id: str, version: int
    ) -> tuple[AgentVersionRecord, EvalResult | None]:
        """The version and its latest evaluation, if it has one."""
        rec = self.version(owner, agent_id, version)
        return rec, self._store.latest_eval(agent_id, version)

    # -- traffic ------------------------------------------------------------------------------

    @translated
    def traffic(self, owner: str, agent_id: str) -> Allocation:
        self.get(owner, agent_id)
        return self._in_force(agent_id)

    @translated
    def history(self, owner: str, agent_id: str) -> list[Allocation]:
        self.get(owner, agent_id)
        return self._store.history(agent_id)

    @translated
    def set_traffic(
        self,
        owner: str,
        agent_id: str,
        entries: list[TrafficEntry],
        expected_revision: int | None,
    ) -> Allocation:
        if expected_revision is None:
            raise RevisionRequired(
                "say which traffic revision you are replacing: send If-Match with the ETag of "
                "GET .../traffic, or expected_revision in the body"
            )
        agent = self.get(owner, agent_id)
        split = checked_split(entries, agent.latest_version)
        self._check_evaluated(agent_id, split)
        action: TrafficAction = "promote" if len(split) == 1 else "set"
        return self._replace(agent_id, split, action, owner, expected_revision)

    @translated
    def promote(
        self, owner: str, agent_id: str, version: int, expected_revision: int | None = None
    ) -> Allocation:
        """All traffic to one version."""
        agent = self.get(owner, agent_id)
        split = checked_split([TrafficEntry(version=version, percent=100)], agent.latest_version)
        self._check_evaluated(agent_id, split)
        return self._replace(agent_id, split, "promote", owner, expected_revision)

    @translated
    def rollback(
        self,
        owner: str,
        agent_id: str,
        expected_revision: int | None = None,
        reason: str | None = None,
        action: TrafficAction = "rollback",
    ) -> Allocation:
        """Back to the allocation the one in force replaced (repeated, it keeps walking back)."""
        self.get(owner, agent_id)
        current = self._in_force(agent_id)
        self._check_expected(current, expected_revision)
        target = None
        if current.previous_revision is not None:
            target = self._store.allocation(agent_id, current.previous_revision)
        if target is None:
            raise NothingToRollBack(
                f"traffic revision {current.revision} is the agent's first allocation; "
                "there is nothing before it to roll back to"
            )
        new = Allocation(
            agent_id=agent_id,
            revision=current.revision + 1,
            entries=target.entries,
            action=action,
            at=self._clock(),
            actor=owner,
            reason=reason,
            previous_revision=target.previous_revision,
        )
        return self._write(new, current.revision)

    @translated
    def roll_back_to_baseline(self, current: Allocation, reason: str) -> Allocation:
        """The monitor's rollback: all traffic to the split's baseline, if the split still stands."""
        new = Allocation(
            agent_id=current.agent_id,
            revision=current.revision + 1,
            entries=[TrafficEntry(version=current.baseline, percent=100)],
            action="auto_rollback",
            at=self._clock(),
            actor=MONITOR_ACTOR,
            reason=reason,
            previous_revision=current.revision,
        )
        return self._write(new, current.revision)

    # -- sessions -----------------------------------------------------------------------------

    @translated
    def choose(
        self, owner: str, agent_id: str, version: int | None, sticky_key: str
    ) -> ChosenVersion:
        """The version a new session of `agent_id` runs: the named one, else the sticky split's."""
        by: Literal["explicit", "traffic"] = "explicit"
        try:
            if version is None:
                version = self.assignment(owner, agent_id, sticky_key)
                by = "traffic"
            else:
                self.get(owner, agent_id)
        except NotFound as exc:
            raise InvalidRequest(f"agent_id: {exc.message}") from exc
        rec = self._store.get_version(agent_id, version)
        if rec is None:
            raise InvalidRequest(f"agent_version: agent {agent_id} has no version {version}")
        return ChosenVersion(agent_id=agent_id, version=version, spec=rec.spec, by=by)

    @translated
    def assignment(self, owner: str, agent_id: str, sticky_key: str) -> int:
        """The version the split in force gives this caller (`traffic.sticky_key`)."""
        self.get(owner, agent_id)
        return assigned_version(agent_id, sticky_key, self._in_force(agent_id).entries)

    # -- internals ----------------------------------------------------------------------------

    def _resolved(self, changes: dict[str, Any]) -> AgentSpec:
        try:
            loaded = self._config()
        except ConfigError as exc:
            raise ConfigUnavailable(f"the voice config is invalid: {exc}") from exc
        try:
            return resolve_spec(changes, loaded.config)
        except SpecError as exc:
            raise InvalidRequest(str(exc)) from exc

    def _check_evaluated(self, agent_id: str, split: list[TrafficEntry]) -> None:
        """With `evals.required`, a version may grow past the canary share only with a passing
        evaluation. Shares it already has stand; rollbacks (by hand or the monitor's) are never
        held back."""
        try:
            settings = self._config().config.realtime.evals
        except ConfigError as exc:
            raise ConfigUnavailable(f"the voice config is invalid: {exc}") from exc
        if not settings.required:
            return
        current = self._store.traffic(agent_id)
        had = {e.version: e.percent for e in current.entries} if current else {}
        for entry in split:
            if entry.percent <= max(settings.canary_percent, had.get(entry.version, 0)):
                continue
            result = self._store.latest_eval(agent_id, entry.version)
            if result is not None and result.passed:
                continue
            last = (
                "has not been evaluated"
                if result is None
                else f"failed its last evaluation ({result.suite}, {result.mode}: "
                f"{result.pass_rate:.0%} passed, {result.threshold:.0%} needed)"
            )
            raise EvaluationRequired(
                f"version {entry.version} {last}; evals.required allows it at most "
                f"{settings.canary_percent}% of traffic until a run passes: "
                f"python -m evals run SUITE --agent {agent_id} --version {entry.version} "
                "--api <this API's URL>"
            )

    def _in_force(self, agent_id: str) -> Allocation:
        alloc = self._store.traffic(agent_id)
        if alloc is None:
            raise NotFound(
                f"agent {agent_id} has no traffic yet: publish a version with "
                f"POST /voice/realtime/agents/{agent_id}/versions"
            )
        return alloc

    @staticmethod
    def _check_expected(current: Allocation, expected: int | None) -> None:
        if expected is not None and expected != current.revision:
            raise StaleRevision(
                f"traffic is at revision {current.revision}, not {expected}; read it again "
                "(GET .../traffic) and decide on the split in force"
            )

    def _replace(
        self,
        agent_id: str,
        split: list[TrafficEntry],
        action: TrafficAction,
        actor: str,
        expected: int | None,
    ) -> Allocation:
        current = self._in_force(agent_id)
        self._check_expected(current, expected)
        new = Allocation(
            agent_id=agent_id,
            revision=current.revision + 1,
            entries=split,
            action=action,
            at=self._clock(),
            actor=actor,
            previous_revision=current.revision,
        )
        return self._write(new, current.revision)

    def _write(self, new: Allocation, expected: int) -> Allocation:
        if not self._store.set_traffic(new, expected):
            raise StaleRevision(
                f"traffic changed while this write was made (it is no longer revision {expected});"
                " read it again and retry"
            )
        logger.info(
            "agent traffic changed",
            extra={"agent_id": new.agent_id, "revision": new.revision, "action": new.action},
        )
        return new
