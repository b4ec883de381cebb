"""iCalendar export of a programme's sessions (RFC 5545, via the `icalendar` package)."""

from __future__ import annotations

from icalendar import Calendar, Event

from concord.capacity.tables import Programme


def programme_calendar(programme: Programme, hub_url: str) -> bytes:
    """A calendar with one event per session, in the session's own time zone."""
    calendar = Calendar()
    calendar.add("prodid", "-//Concord//capacity//EN")
    calendar.add("version", "2.0")
    calendar.add("x-wr-calname", programme.title)
    for number, s in enumerate(programme.sessions, start=1):
        event = Event()
        event.add("uid", f"concord-programme-{programme.id}-session-{s.id}@{_host(hub_url)}")
        event.add(
            "summary",
            f"{programme.title} — {s.title}" if s.title != programme.title else programme.title,
        )
        from zoneinfo import ZoneInfo

        event.add("dtstart", s.starts_at.astimezone(ZoneInfo(s.timezone)))
        event.add("dtend", s.ends_at.astimezone(ZoneInfo(s.timezone)))
        event.add("dtstamp", s.starts_at)
        event.add("location", programme.place or "online")
        event.add("url", f"{hub_url.rstrip('/')}/programmes/{programme.id}")
        event.add("description", f"{number}/{len(programme.sessions)} · {programme.description}")
        calendar.add_component(event)
    ical: bytes = calendar.to_ical()
    return ical


def _host(url: str) -> str:
    from urllib.parse import urlparse

    return urlparse(url).netloc or "concord"
