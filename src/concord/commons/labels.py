"""Words the commons pages show from data, marked for the catalogue."""

from __future__ import annotations

from concord.errors import N_

LABELS = [N_("model"), N_("dataset"), N_("pass"), N_("fail"), N_("error"), N_("yes"), N_("no")]

# Provenance keys the federation and the demo write, as a reader should see them; others
# show as they are.
PROVENANCE_LABELS: dict[str, str] = {
    "trained_with": N_("Trained with"),
    "decision": N_("Decision"),
    "proposal": N_("Proposal"),
    "reference": N_("Reference"),
    "job": N_("Job"),
    "task": N_("Task"),
    "strategy": N_("Strategy"),
    "local_training": N_("Local training"),
    "privacy": N_("Privacy"),
    "participants": N_("Participants"),
    "rounds": N_("Rounds"),
    "final_sha256": N_("Final model SHA-256"),
    "number": N_("Round"),
    "examples": N_("Examples"),
    "aggregate_sha256": N_("Aggregate SHA-256"),
    "log_index": N_("Log entry"),
    "source": N_("Source"),
    "upstream": N_("Upstream"),
    "name": N_("Name"),
    "params": N_("Parameters"),
    "epochs": N_("Epochs"),
    "batch_size": N_("Batch size"),
    "learning_rate": N_("Learning rate"),
    "proximal_mu": N_("Proximal term μ"),
    "personal_data": N_("Personal data"),
    "differential_privacy": N_("Differential privacy"),
    "secure_aggregation": N_("Secure aggregation"),
}
