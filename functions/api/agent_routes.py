"""Agents API under /voice/realtime/agents: thin handlers that parse, call one service method, return."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Path, Query, Response, status

from functions.agents.traffic import sticky_key
from functions.api.agent_schemas import (
    AgentCreate,
    AgentList,
    AgentPublic,
    AssignmentPublic,
    EvalCreate,
    EvalPublic,
    Promote,
    Rollback,
    TrafficHistory,
    TrafficPublic,
    TrafficUpdate,
    VersionCreate,
    VersionList,
    VersionPublic,
)
from functions.api.deps import Agents, CurrentUser
from functions.api.schemas import ErrorBody
from functions.domain.agents import Allocation
from functions.domain.errors import InvalidRequest

router = APIRouter(prefix="/voice/realtime/agents", tags=["agents"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (401, 404, 409, 413, 422, 428, 503)
}
AgentId = Annotated[str, Path(min_length=1, max_length=64)]
VersionNumber = Annotated[int, Path(ge=1)]
IfMatch = Annotated[
    str | None,
    Header(description="the traffic's ETag (its revision) this write replaces; 409 if stale"),
]


def expected_revision(if_match: str | None, in_body: int | None) -> int | None:
    """The revision a write replaces, from `If-Match` (an ETag) or the body; both must agree."""
    if if_match is None:
        return in_body
    tag = if_match.strip().removeprefix("W/").strip('"')
    if not tag.isdigit() or int(tag) < 1:
        raise InvalidRequest(
            f"If-Match: {if_match[:40]!r} is not a traffic ETag; send the ETag GET .../traffic gave"
        )
    if in_body is not None and in_body != int(tag):
        raise InvalidRequest(
            f"expected_revision: {in_body} disagrees with If-Match {tag}; send one of them"
        )
    return int(tag)


def _traffic(response: Response, alloc: Allocation) -> TrafficPublic:
    response.headers["ETag"] = f'"{alloc.revision}"'
    return TrafficPublic.of(alloc)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=AgentPublic, responses=_ERRORS)
def create_agent(user: CurrentUser, agents: Agents, body: AgentCreate) -> AgentPublic:
    return AgentPublic.of(agents.create(user, body.name))


@router.get("", response_model=AgentList, responses=_ERRORS)
def list_agents(user: CurrentUser, agents: Agents) -> AgentList:
    return AgentList(agents=[AgentPublic.of(a) for a in agents.list(user)])


@router.get("/{agent_id}", response_model=AgentPublic, responses=_ERRORS)
def get_agent(agent_id: AgentId, user: CurrentUser, agents: Agents) -> AgentPublic:
    return AgentPublic.of(agents.get(user, agent_id))


@router.post(
    "/{agent_id}/versions",
    status_code=status.HTTP_201_CREATED,
    response_model=VersionPublic,
    responses=_ERRORS,
)
def publish_version(
    agent_id: AgentId, user: CurrentUser, agents: Agents, body: VersionCreate
) -> VersionPublic:
    return VersionPublic.of(agents.publish(user, agent_id, body.config, body.note))


@router.get("/{agent_id}/versions", response_model=VersionList, responses=_ERRORS)
def list_versions(agent_id: AgentId, user: CurrentUser, agents: Agents) -> VersionList:
    return VersionList(versions=[VersionPublic.of(v) for v in agents.versions(user, agent_id)])


@router.get("/{agent_id}/versions/{version}", response_model=VersionPublic, responses=_ERRORS)
def get_version(
    agent_id: AgentId, version: VersionNumber, user: CurrentUser, agents: Agents
) -> VersionPublic:
    return VersionPublic.of(*agents.version_with_eval(user, agent_id, version))


@router.post(
    "/{agent_id}/versions/{version}/evals",
    status_code=status.HTTP_201_CREATED,
    response_model=EvalPublic,
    responses=_ERRORS,
)
def record_eval(
    agent_id: AgentId, version: VersionNumber, user: CurrentUser, agents: Agents, body: EvalCreate
) -> EvalPublic:
    """Keeps a run of `python -m evals` as the version's latest evaluation (what the
    `evals.required` gate reads)."""
    return EvalPublic.of(agents.record_eval(user, agent_id, version, body.model_dump()))


@router.get("/{agent_id}/traffic", response_model=TrafficPublic, responses=_ERRORS)
def get_traffic(
    agent_id: AgentId, user: CurrentUser, agents: Agents, response: Response
) -> TrafficPublic:
    return _traffic(response, agents.traffic(user, agent_id))


@router.put("/{agent_id}/traffic", response_model=TrafficPublic, responses=_ERRORS)
def set_traffic(
    agent_id: AgentId,
    user: CurrentUser,
    agents: Agents,
    body: TrafficUpdate,
    response: Response,
    if_match: IfMatch = None,
) -> TrafficPublic:
    expected = expected_revision(if_match, body.expected_revision)
    return _traffic(response, agents.set_traffic(user, agent_id, body.entries(), expected))


@router.get("/{agent_id}/traffic/history", response_model=TrafficHistory, responses=_ERRORS)
def traffic_history(agent_id: AgentId, user: CurrentUser, agents: Agents) -> TrafficHistory:
    return TrafficHistory(allocations=[TrafficPublic.of(a) for a in agents.history(user, agent_id)])


@router.post("/{agent_id}/promote", response_model=TrafficPublic, responses=_ERRORS)
def promote(
    agent_id: AgentId,
    user: CurrentUser,
    agents: Agents,
    body: Promote,
    response: Response,
    if_match: IfMatch = None,
) -> TrafficPublic:
    expected = expected_revision(if_match, body.expected_revision)
    return _traffic(response, agents.promote(user, agent_id, body.version, expected))


@router.post("/{agent_id}/rollback", response_model=TrafficPublic, responses=_ERRORS)
def rollback(
    agent_id: AgentId,
    user: CurrentUser,
    agents: Agents,
    response: Response,
    body: Annotated[Rollback | None, Body()] = None,
    if_match: IfMatch = None,
) -> TrafficPublic:
    request = body or Rollback()
    expected = expected_revision(if_match, request.expected_revision)
    return _traffic(response, agents.rollback(user, agent_id, expected, request.reason))


@router.get("/{agent_id}/assignment", response_model=AssignmentPublic, responses=_ERRORS)
def assignment(
    agent_id: AgentId,
    user: CurrentUser,
    agents: Agents,
    end_user_id: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
    phone_number: Annotated[str | None, Query(min_length=1, max_length=32)] = None,
) -> AssignmentPublic:
    """Which version the split in force gives a caller: the same rule POST /session applies."""
    key = sticky_key(end_user_id, phone_number, user)
    return AssignmentPublic(agent_id=agent_id, version=agents.assignment(user, agent_id, key))
