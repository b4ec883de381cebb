"""The errors a decision method raises on bad input: coded, translated, 422 at the edge."""

from __future__ import annotations

from concord.errors import N_, Invalid


class BlockWithoutReason(Invalid):
    code = "decision.block_without_reason"
    message = N_("A block needs a written reason: {member} gave none.")


class BallotInvalid(Invalid):
    code = "decision.ballot_invalid"
    message = N_("The ballot of {member} is not valid for this method: {reason}")


class MethodInvalid(Invalid):
    code = "decision.method_invalid"
    message = N_("The decision method cannot count with these settings: {reason}")
