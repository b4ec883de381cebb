"""What the hub serves about governance, checked against its log: `concord audit --full`.

The ledger's audit proves that the entries are the log the hub signed; this check proves that
the ballots and decisions the API serves are those entries — a ballot row changed in the
database, a decision served with other arithmetic, or a decision that does not recount from
the ballots in the log is named by the first entry where it differs. It runs on the auditor's
machine and needs nothing but the entries and the hub's public API.
"""

from __future__ import annotations

from typing import Any

from concord.client import HubClient
from concord.errors import N_, Conflict
from concord.governance import ballots
from concord.ledger.audit import ServedDiffers, difference, served_or_empty, shown

BALLOT_FIELDS = ("member", "choice", "reason", "payload", "signature")


class RecountMismatch(Conflict):
    code = "audit.recount_mismatch"
    message = N_(
        "The decision on {proposal} does not recount from the ballots in the log: {field}, "
        "logged {logged}, recounted {recounted} (entry {index})."
    )


def check(hub: HubClient, bodies: list[dict[str, Any]]) -> None:
    """Raises `RecountMismatch` or `ServedDiffers` for the first difference, by log entry."""
    _check_recount(bodies)
    differences = [
        *_ballot_differences(hub, bodies),
        *_decision_differences(hub, bodies),
        *_proxy_differences(hub, bodies),
    ]
    if differences:
        first = min(differences, key=lambda d: int(d["index"]))
        raise ServedDiffers(**first)


def _check_recount(bodies: list[dict[str, Any]]) -> None:
    decisions = [i for i, b in enumerate(bodies) if b["kind"] == "governance.decision"]
    for index, result in zip(decisions, ballots.recount(bodies), strict=True):
        if not result["matches"]:
            first = result["differences"][0]
            raise RecountMismatch(
                proposal=result["proposal"],
                field=first["field"],
                logged=shown(first["logged"]),
                recounted=shown(first["recounted"]),
                index=index if first.get("entry") is None else first["entry"],
            )


def _questions(bodies: list[dict[str, Any]]) -> list[str]:
    """The proposals the log names (not their amendments), in order of first mention."""
    seen: dict[str, None] = {}
    for body in bodies:
        if body["kind"] == "governance.proposal":
            seen.setdefault(str(body["content"]["proposal"]), None)
    return list(seen)


def _ballot_differences(hub: HubClient, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each served ballot against its entry; and each member's latest ballot in the log
    against the one served."""
    state = ballots.Recount()
    for index, body in enumerate(bodies):
        state.read(index, body)
    out = []
    for ref in _questions(bodies):
        path = f"/api/proposals/{ref}/ballots"
        served = {b["member"]: b for b in hub.get(path)}
        for slug, row in served.items():
            index = int(row["log_index"])
            entry = bodies[index] if 0 <= index < len(bodies) else {}
            content = entry.get("content", {}) if entry.get("kind") == "governance.ballot" else {}
            payload = content.get("payload", {})
            logged = {
                "member": payload.get("member"),
                "choice": payload.get("choice"),
                "reason": payload.get("reason"),
                "payload": payload,
                "signature": content.get("signature"),
            }
            for name in BALLOT_FIELDS:
                if row.get(name) != logged[name]:
                    out.append(_difference(path, index, f"{slug}.{name}", row.get(name), logged))
                    break
        for slug, latest in state.latest.get(ref, {}).items():
            row = served.get(slug, {})
            if row.get("log_index") != latest["log_index"]:
                out.append(
                    {
                        "what": path,
                        "index": latest["log_index"],
                        "field": f"{slug}.log_index",
                        "served": shown(row.get("log_index")),
                        "logged": latest["log_index"],
                    }
                )
    return out


def _decision_differences(hub: HubClient, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each decision entry (of a proposal, not of an amendment) against the served decision."""
    out = []
    for index, body in enumerate(bodies):
        content = body["content"]
        if body["kind"] != "governance.decision" or "/" in str(content["proposal"]):
            continue
        path = f"/api/proposals/{content['proposal']}/decision"
        served = served_or_empty(hub, path)
        logged = {"log_index": index, "outcome": content["outcome"]}
        logged |= {f"arithmetic.{k}": v for k, v in content["arithmetic"].items()}
        seen = {"log_index": served.get("log_index"), "outcome": served.get("outcome")}
        seen |= {f"arithmetic.{k}": v for k, v in served.get("arithmetic", {}).items()}
        names = sorted(logged.keys() | seen.keys())
        found = difference(path, index, ((n, seen.get(n), logged.get(n)) for n in names))
        if found:
            out.append(found)
    return out


def _proxy_differences(hub: HubClient, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each served proxy against its entry (payload, signature, revoked), and each logged proxy
    served at all."""
    revoked = {
        int(b["content"]["proxy"]) for b in bodies if b["kind"] == "governance.proxy_revoked"
    }
    logged = {i: b["content"] for i, b in enumerate(bodies) if b["kind"] == "governance.proxy"}
    if not logged:
        return []
    path = "/api/proxies"
    served = {int(p["log_index"]): p for p in hub.get(path)}
    out = []
    for index, content in sorted(logged.items()):
        row = served.get(index, {})
        expected = {
            "payload": content.get("payload"),
            "signature": content.get("signature"),
            "revoked": index in revoked,
        }
        fields = ((f"proxy.{name}", row.get(name), value) for name, value in expected.items())
        found = difference(path, index, fields)
        if found:
            out.append(found)
    for index in sorted(set(served) - set(logged)):
        out.append(
            {
                "what": path,
                "index": index,
                "field": "proxy",
                "served": shown(served[index]["payload"]),
                "logged": "—",
            }
        )
    return out


def _difference(
    path: str, index: int, field: str, served: Any, logged: dict[str, Any]
) -> dict[str, Any]:
    return {
        "what": path,
        "index": index,
        "field": field,
        "served": shown(served),
        "logged": shown(logged[field.rsplit(".", 1)[1]]),
    }
