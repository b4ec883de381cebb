"""The Hugging Face Hub protocol, both ways: what `huggingface_hub` (and the libraries above
it) send to write, search and read, answered by the same service functions as `concord push`."""

from __future__ import annotations

from fastapi import APIRouter

from concord.commons.hub_protocol import commits, gating, lfs, likes, refs, search, workspace, xet

router = APIRouter(tags=["hub protocol"])
for module in (workspace, lfs, xet, commits, refs, search, gating, likes):
    router.include_router(module.router)
