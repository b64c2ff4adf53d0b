"""Wire types of boards and red/black boards (camelCase JSON)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from msgspec import Meta

from service.core.constraints import PERIOD_ID, AwareDatetime, ExternalId, Key

BoardKey = Key
PeriodParam = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=32,
        description="`current`, `previous`, or a period id: `all`, `window`, `2026-11-23` "
        "(daily), `2026-W48` (weekly, Monday start), `2026-11` (monthly); years 2000-2100.",
        extra=PERIOD_ID,
    ),
]


class LeaderboardIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    """A board definition. Metric, period, time zone and window are the board's identity:
    changing them under an existing key is refused (LEADERBOARD_KEY_CLASH); use a new key."""

    metric: Annotated[
        str,
        Meta(
            description="points | growth | checkins | eventValue | eventCount | invites "
            "(推荐人数: invitees who joined, counted for the inviter)"
        ),
    ]
    period: Annotated[str, Meta(description="allTime | daily | weekly | monthly | window")]
    title: Annotated[str, Meta(max_length=100)] = ""
    timezone: Annotated[str, Meta(max_length=64)] = "Asia/Shanghai"
    event_type: Annotated[str, Meta(max_length=64)] | None = None
    campaign: Annotated[str, Meta(max_length=64)] | None = None
    value_scale: Annotated[
        float, Meta(description="eventValue: score = round(value * valueScale)")
    ] = 1.0
    window_start: AwareDatetime | None = None
    window_end: AwareDatetime | None = None
    min_score: Annotated[int, Meta(description="Minimum score to appear on the board.")] = 1
    display: Annotated[str, Meta(description="masked (default) | full | anonymous")] = "masked"
    show_avatar: bool = True
    grace_days: Annotated[int, Meta(ge=1, le=366)] = 7
    close_delay_seconds: Annotated[int, Meta(ge=0, le=86400)] = 300
    scope: Annotated[
        str,
        Meta(
            description="member (default): entries are members. team: entries are the teams "
            "of `teamSet`; an event counts for the team its member was in when it happened."
        ),
    ] = "member"
    team_set: Annotated[str, Meta(max_length=64)] | None = None


class ParkedOut(msgspec.Struct, rename="camel"):
    """Why and since when a board is set aside (it failed while counting events)."""

    reason: str
    parked_at: datetime


class LeaderboardOut(msgspec.Struct, rename="camel"):
    key: str
    version: int
    config: LeaderboardIn
    red_black: str | None
    created_at: datetime
    updated_at: datetime
    state: Annotated[
        str,
        Meta(
            description="active: counting. parked: it failed while counting events and is set "
            "aside (see `parked`; every other board keeps counting); a corrected PUT resumes "
            "it and replays the events it missed. resuming: catching up after a correction. "
            "archived: retired by the operator; it counts nothing more, its history stays "
            "readable here and in `/entries`, and its key stays taken."
        ),
    ] = "active"
    parked: ParkedOut | None = None
    archived_at: datetime | None = None


class LeaderboardList(msgspec.Struct, rename="camel"):
    items: list[LeaderboardOut]


class MemberShown(msgspec.Struct, rename="camel"):
    masked_nickname: str
    avatar_url: str
    title: Annotated[
        str | None, Meta(description="The title (头衔) the member chose to show, if any.")
    ] = None


class TeamShown(msgspec.Struct, rename="camel"):
    key: str
    name: str


class BoardItem(msgspec.Struct, rename="camel"):
    rank: int
    member: Annotated[
        MemberShown, Meta(description="On a team board: the team's name as the nickname.")
    ]
    score: int
    is_me: Annotated[bool, Meta(description="On a team board: my team.")] = False
    team: Annotated[TeamShown | None, Meta(description="Team boards only.")] = None


class MeOnBoard(msgspec.Struct, rename="camel"):
    rank: int | None
    score: int
    gap_to_previous: int | None


class PeriodOut(msgspec.Struct, rename="camel"):
    id: str
    starts_at: datetime
    ends_at: datetime | None
    closed: bool


class BoardPage(msgspec.Struct, rename="camel"):
    period: PeriodOut
    updated_at: datetime | None
    items: list[BoardItem]
    me: MeOnBoard
    next_cursor: str | None = None


class FriendsIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    """Up to 200 friends, by member id or by the brand's externalId (either or both)."""

    member_ids: Annotated[list[Annotated[int, Meta(ge=1)]], Meta(max_length=200)] = []
    external_ids: Annotated[list[ExternalId], Meta(max_length=200)] = []
    period: PeriodParam = "current"


class EntryOut(msgspec.Struct, rename="camel"):
    rank: int
    member_id: int
    score: int
    reached_at: datetime


class EntriesPage(msgspec.Struct, rename="camel"):
    period: PeriodOut
    items: list[EntryOut]
    next_cursor: str | None = None


class RedBlackIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    """A red/black board on a leaderboard. Black is off unless enabled; it never shows a
    member who opted out."""

    board_key: BoardKey
    title: Annotated[str, Meta(max_length=100)] = ""
    red_size: int = 10
    black_size: int = 0
    black_enabled: bool = False
    min_activity: Annotated[
        int, Meta(description="Minimum score in the period to be on either list.")
    ] = 1


class RedBlackOut(msgspec.Struct, rename="camel"):
    key: str
    version: int
    config: RedBlackIn
    created_at: datetime
    updated_at: datetime


class NoteIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    member_id: Annotated[int, Meta(ge=1)]
    note: Annotated[str, Meta(max_length=200)]


class PublishIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    """A correction: recompute from the archive, with a note per entry; history is kept."""

    period: PeriodParam = "previous"
    notes: Annotated[list[NoteIn], Meta(max_length=200)] = []
    reason: Annotated[str, Meta(max_length=500)] = ""


class RedBlackEntry(msgspec.Struct, rename="camel"):
    rank: int
    member: MemberShown
    score: int
    note: str = ""
    team: Annotated[TeamShown | None, Meta(description="Team boards only.")] = None


class RedBlackEntryAdmin(msgspec.Struct, rename="camel"):
    list: str
    rank: int
    member_id: int
    score: int
    note: str = ""


class PublicationOut(msgspec.Struct, rename="camel"):
    key: str
    board_key: str
    period: str
    revision: int
    published_at: datetime
    published_by: str
    reason: str
    entries: list[RedBlackEntryAdmin]


class RedBlackView(msgspec.Struct, rename="camel"):
    title: str
    period: str
    revision: int
    published_at: datetime
    red: list[RedBlackEntry]
    black: list[RedBlackEntry]


class PreferenceIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    hide_from_black: bool


class PreferenceOut(msgspec.Struct, rename="camel"):
    hide_from_black: bool
