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


# Reasons, as catalogue messages so that they translate inside the messages above.
TWICE = N_("it cast more than one ballot")
WEIGHT = N_("a weight is a whole number of at least 1")
UNKNOWN_CANDIDATE = N_("it names a candidate who is not standing")
UNKNOWN_OPTION = N_("it names an option that is not on the ballot")
RANKED_TWICE = N_("it ranks a candidate twice")
UNKNOWN_STANCE = N_("its answer is not consent, stand aside or block")
SCORE_RANGE = N_("a score is a whole number from 0 to 5")
MARKS = N_("marks are whole numbers of at least 0")
APPROVE_ONCE = N_("an approval marks an option once")
DOTS_EACH = N_("it puts more dots on one option than allowed")
DOTS_TOTAL = N_("it uses more dots than allowed")
NO_CANDIDATES = N_("there are no candidates or options")
LISTED_TWICE = N_("a candidate or option is listed twice")
LOT = N_("the lot must list every candidate exactly once")
SEATS = N_("the number of seats is a whole number of at least 1")
CAP = N_("the block cap is a whole number of at least 0")
DOTS = N_("the numbers of dots allowed are whole numbers of at least 1")
BLOCS = N_("a bloc condition names one or more distinct blocs")
THRESHOLD = N_("a bloc threshold is not negative")
SCORE_THRESHOLD = N_("a score threshold lies between 0 and 5")
BASIS = N_("a bloc condition's basis is “first” or “final”")
MAX_BLOCKS = N_("the blocks allowed inside a bloc are a whole number of at least 0")
MEMBERSHIP = N_("a bloc that the condition names has no membership")
