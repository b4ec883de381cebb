"""A trained model's card: YAML metadata built with the YAML library, then the text.

Every privacy statement comes from what the run applied and measured (the rounds' privacy
records, `privacy.mechanism.achieved`), never from what the spec asked for: a spec that declared
differential privacy on a run that did not apply it gets no DP statement.
"""

from __future__ import annotations

from typing import Any

import yaml

from concord.federation.tables import Job


def model_card(
    job: Job,
    participants: list[str],
    metrics: dict[str, Any],
    achieved: dict[str, Any] | None = None,
    record_level: dict[str, Any] | None = None,
) -> str:
    spec = job.spec
    privacy = spec.get("privacy", {})
    meta: dict[str, Any] = {
        "license": str(spec.get("licence", "apache-2.0")).lower(),
        "datasets": [f"{p}/local-data" for p in participants],  # each stayed with its member
        "tags": ["concord", "federated-learning"] + (["differential-privacy"] if achieved else []),
        "model-index": [
            {
                "name": job.title,
                "results": [
                    {"metrics": [{"type": "accuracy", "value": metrics.get("accuracy", 0)}]}
                ],
            }
        ],
    }
    if achieved:
        meta["privacy"] = {"client_level": achieved}
    if record_level:
        meta.setdefault("privacy", {})["record_level"] = record_level
    front = yaml.safe_dump(meta, allow_unicode=True, sort_keys=False)
    lines = [
        f"# {job.title}",
        "",
        f"Trained with Concord by federated learning: {len(participants)} members "
        f"({', '.join(participants)}) trained task `{spec.get('task')}` for {job.rounds_done} "
        f"rounds with {spec.get('strategy', {}).get('name')}; no data left its owner.",
        "",
        f"- Decision: {job.reference or '—'}",
        f"- Privacy: {privacy_text(privacy, achieved, record_level)}",
    ]
    if job.finish_reason:
        lines.append(f"- Ended: {job.finish_reason}")
    return "---\n" + front + "---\n" + "\n".join(lines) + "\n"


def privacy_text(
    privacy: dict[str, Any],
    achieved: dict[str, Any] | None,
    record_level: dict[str, Any] | None = None,
) -> str:
    """The run's privacy as a sentence a reader of the card understands."""
    parts = ["personal data" if privacy.get("personal_data") else "no personal data"]
    if achieved:
        parts.append(
            f"client-level differential privacy achieved, ε = {achieved['epsilon']:.3g}, "
            f"δ = {achieved['delta']:.3g} over {achieved['rounds']} rounds (sampling rate "
            f"{achieved['sampling_rate']:.3g}, noise multiplier "
            f"{achieved['noise_multiplier']:.3g}, "
            f"clipping norm {achieved['clip_norm']:.3g}, {achieved['mode']} noise, "
            f"{achieved['accountant'].upper()} accountant): it bounds what the model reveals "
            "about any one member's whole contribution"
        )
    elif privacy.get("differential_privacy"):
        parts.append(
            "differential privacy was requested but NOT applied to every round: none is claimed"
        )
    else:
        parts.append("no differential privacy")
    if privacy.get("secure_aggregation"):
        # Every round of such a job runs SecAgg+ (federation/secure_round): no round closes
        # from clear updates.
        parts.append(
            "secure aggregation (SecAgg+): the hub saw only the sum of each round's updates"
        )
    if record_level:
        parts.append(
            f"record-level differential privacy (DP-SGD in each member's local training), "
            f"ε = {record_level['epsilon']:.3g}, δ = {record_level['delta']:.3g} per member's "
            "dataset: it bounds what the model reveals about any one record"
        )
    return "; ".join(parts)
