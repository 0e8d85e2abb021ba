"""JSON shapes of the Platform API v3 resources the client returns (only the fields Kapal reads)."""

from __future__ import annotations

from typing import NotRequired, TypedDict


class Ref(TypedDict):
    id: str
    name: NotRequired[str]


class UserRef(TypedDict):
    id: str
    email: str


class Account(TypedDict):
    id: str
    email: str
    created_at: NotRequired[str]


class AccessToken(TypedDict):
    token: str


class Authorization(TypedDict):
    """What `POST /signup` and `POST /oauth/authorizations` return."""

    id: str
    access_token: AccessToken
    user: UserRef


class App(TypedDict):
    id: str
    name: str
    web_url: str
    git_url: str
    owner: UserRef
    maintenance: bool
    created_at: str
    updated_at: str
    released_at: NotRequired[str | None]
    stack: NotRequired[Ref]
    region: NotRequired[Ref]
    process_tier: NotRequired[str]  # eco, basic or production


class PlatformTls(TypedDict):
    """`GET /platform/tls`: Kapal's ports and its local CA, for `kapal heroku-env`."""

    ports: dict[str, int]  # api, api_tls, logs, rendezvous
    ca_file: str
    ca_certificate: str


class AppQuota(TypedDict):
    app_uuid: str
    quota_used: int  # seconds


class Quota(TypedDict):
    """`GET /accounts/{id}/actions/get-quota`: eco dyno seconds this month."""

    account_quota: int
    quota_used: int
    apps: list[AppQuota]


class Formation(TypedDict):
    id: str
    type: str
    quantity: int
    size: str
    command: str


class FormationUpdate(TypedDict):
    type: str
    quantity: NotRequired[int]
    size: NotRequired[str]


class ReleaseRef(TypedDict):
    version: int


class Dyno(TypedDict):
    id: str
    name: str
    type: str
    state: str
    command: str
    size: str
    release: NotRequired[ReleaseRef | None]
    created_at: str
    updated_at: str
    attach_url: NotRequired[str | None]
    restart_at: NotRequired[str | None]  # Kapal: when a crashed dyno is started again


class Release(TypedDict):
    id: str
    version: int
    description: str
    status: str  # succeeded | pending | failed
    current: bool
    user: NotRequired[UserRef | None]
    slug: NotRequired[Ref | None]
    created_at: str
    updated_at: str
    eligible_for_rollback: NotRequired[bool]
    output: NotRequired[str | None]


class LogSession(TypedDict):
    id: str
    logplex_url: str
    created_at: str


class AddonPlan(TypedDict):
    id: NotRequired[str]
    name: str


class Addon(TypedDict):
    id: str
    name: str
    state: NotRequired[str]
    config_vars: NotRequired[list[str]]
    addon_service: NotRequired[Ref]
    plan: NotRequired[AddonPlan]
    app: NotRequired[Ref]
    created_at: NotRequired[str]
    provision_message: NotRequired[str | None]  # what a third-party provider said


class BuildRelease(TypedDict):
    id: str
    version: int
    status: str


class SourceBlob(TypedDict):
    url: str | None
    version: str | None


class Build(TypedDict):
    id: str
    status: str  # pending | succeeded | failed
    user: UserRef
    created_at: str
    updated_at: str
    output_stream_url: str
    source_blob: SourceBlob
    release: BuildRelease | None
    buildpacks: list[dict[str, str]] | None
