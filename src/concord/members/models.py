"""Request and response models of the members API (`…Create` in, `…Public` out)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from concord.members.directory import MemberView
from concord.members.tables import ApiToken, MemberKey, MemberStatusChange, Person


class CountryPublic(BaseModel):
    iso2: str
    iso3: str
    m49: str
    name: str
    region: str
    sub_region: str
    intermediate_region: str
    income_group: str
    ldc: bool
    lldc: bool
    sids: bool
    g77: bool
    global_south: bool


class MemberCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    slug: str = Field(description="Short handle: lowercase letters, digits and hyphens.")
    name: str = Field(max_length=200)
    kind: str = Field(description="country, university, ministry, lab, company or ngo")
    country: str = Field(description="ISO 3166-1 alpha-2 or alpha-3 code")
    reason: str = Field(default="", max_length=2000)


class StandingChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="", max_length=2000)


class MemberPublic(BaseModel):
    id: int
    slug: str
    name: str
    kind: str
    status: str
    admitted_at: datetime
    suspended_at: datetime | None
    withdrawn_at: datetime | None
    country: CountryPublic
    blocs: list[str]

    @classmethod
    def of(cls, v: MemberView) -> MemberPublic:
        c = v.country
        m = v.member
        return cls(
            id=m.id,
            slug=m.slug,
            name=m.name,
            kind=m.kind,
            status=m.status,
            admitted_at=m.admitted_at,
            suspended_at=m.suspended_at,
            withdrawn_at=m.withdrawn_at,
            blocs=v.blocs,
            country=CountryPublic(
                iso2=c.iso2,
                iso3=c.iso3,
                m49=c.m49,
                name=c.name,
                region=c.region,
                sub_region=c.sub_region,
                intermediate_region=c.intermediate_region,
                income_group=c.income_group,
                ldc=c.ldc,
                lldc=c.lldc,
                sids=c.sids,
                g77=c.g77,
                global_south=c.global_south,
            ),
        )


class StatusChangePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    action: str
    at: datetime
    reason: str
    log_index: int | None

    @classmethod
    def of(cls, row: MemberStatusChange) -> StatusChangePublic:
        return cls.model_validate(row)


class BlocPublic(BaseModel):
    name: str
    title: str
    kind: str
    members: list[int]


class BlocCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    title: str = Field(max_length=200)
    description: str = Field(default="", max_length=2000)
    members: list[str] = Field(description="Member handles or ids")


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    public_key: str = Field(description="Ed25519 public key: base64 of 32 bytes, or PEM")


class KeyPublic(BaseModel):
    member_id: int
    public_key: str
    fingerprint: str
    created_at: datetime
    retired_at: datetime | None

    @classmethod
    def of(cls, key: MemberKey) -> KeyPublic:
        import base64

        return cls(
            member_id=key.member_id,
            public_key=base64.b64encode(key.public_key).decode(),
            fingerprint=key.fingerprint,
            created_at=key.created_at,
            retired_at=key.retired_at,
        )


class PersonCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=200)
    email: str = Field(max_length=254)
    role: str
    member: str | None = None


class PersonPublic(BaseModel):
    id: int
    name: str
    role: str
    member: str | None
    active: bool

    @classmethod
    def of(cls, p: Person) -> PersonPublic:
        return cls(
            id=p.id,
            name=p.name,
            role=p.role,
            member=p.member.slug if p.member else None,
            active=p.active,
        )


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    person: str | None = Field(default=None, description="Whose token (secretariat only)")
    label: str = Field(default="", max_length=100)
    days: int = Field(default=90, description="Lifetime in days, 1 to 3650")


class TokenPublic(BaseModel):
    id: int
    label: str
    prefix: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None

    @classmethod
    def of(cls, t: ApiToken) -> TokenPublic:
        return cls(
            id=t.id,
            label=t.label,
            prefix=t.prefix,
            created_at=t.created_at,
            expires_at=t.expires_at,
            revoked_at=t.revoked_at,
            last_used_at=t.last_used_at,
        )


class TokenIssued(TokenPublic):
    secret: str = Field(description="The token itself: shown this once, never again")
