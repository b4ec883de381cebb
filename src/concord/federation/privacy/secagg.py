"""SecAgg+ (Bell et al. 2020, "Secure single-server aggregation with (poly)logarithmic
overhead"): the hub learns the sum of the survivors' updates and nothing else about any one.

The protocol's pieces, as pure functions that the node, the hub and the simulator all call:

- Key agreement: each client i has two X25519 key pairs, c (encryption of its shares) and s
  (pairwise masks). For a pair (i, j), HKDF-SHA256 over X25519(s_i, s_j) gives the 32-byte seed
  of their pairwise mask; over X25519(c_i, c_j) the AES-GCM key of what they send each other
  through the hub. The round's context (job, round, attempt) goes into HKDF's info.
- Masks: a seed becomes a vector of uniform integers mod 2^32 with NumPy's PCG64 (seeded with
  the seed's 256 bits through SeedSequence); the node and the hub use the same NumPy, so the
  same seed gives the same vector. y_i = x_i + PRG(b_i) + Σ_{j∈N(i), j>i} PRG(s_ij)
  − Σ_{j∈N(i), j<i} PRG(s_ij) (mod 2^32): the pairwise masks cancel in the sum, the self mask
  b_i is removed once the hub has reconstructed it from the survivors' shares.
- Neighbourhoods: SecAgg+'s k-regular graph, a Harary graph over a random permutation of the
  clients (as Flower's SecAgg+); everyone is everyone's neighbour when k ≥ n − 1.
- Shamir: b_i and the private key s_i are each split into k shares with threshold t over the
  prime field of the Mersenne prime 2^521 − 1 (large enough for 32-byte secrets as integers);
  the x coordinate of a share is the holder's id.
- Unmasking: a survivor reveals, for each neighbour, the share of b (neighbour survived) or of
  s (neighbour dropped after sharing) — never both for one client. With fewer than t shares of
  any needed secret the round cannot be unmasked and fails.
- Quantisation: each coordinate of the clipped delta, in [−r, r], times a scale S, is rounded
  stochastically (unbiased) to an integer and multiplied by the client's weight w_i (its
  examples; 1 under DP). S = ⌊(2^31 − 1) / (r · W)⌋ with W the sum of the weights announced
  in the round, so the survivors' sum never wraps the signed 32-bit range. The mean decoded as
  Σ / (S · Σw) is within 1/S of the exact weighted mean of the clipped deltas in every
  coordinate (each rounding moves a value by less than one unit).
"""

from __future__ import annotations

import base64
import json
import math
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from numpy.typing import NDArray

from concord.errors import N_, Conflict
from concord.federation.privacy import mechanism
from concord.federation.privacy.noise import share_std

PRIME = 2**521 - 1  # Mersenne prime: the Shamir field
MODULUS = 2**32  # the masked vectors' ring
SIGNED_MAX = 2**31 - 1
Vector = NDArray[np.uint32]


class SecAggFailed(Conflict):
    code = "federation.secagg_failed"
    message = N_(
        "Secure aggregation could not unmask round {round}: {reason}. The round is tried again."
    )


# --- Shamir secret sharing -------------------------------------------------------------------


def split(secret: int, holders: Iterable[int], threshold: int) -> dict[int, int]:
    """Shares of `secret` (0 ≤ secret < PRIME) for each holder id (its x, > 0): any
    `threshold` of them give the secret back, fewer tell nothing about it."""
    if not 0 <= secret < PRIME:
        raise ValueError("the secret must lie in the field")
    xs = list(holders)
    if threshold < 1 or threshold > len(xs) or len(set(xs)) != len(xs) or min(xs) <= 0:
        raise ValueError("need distinct positive holder ids and 1 ≤ threshold ≤ holders")
    coefficients = [secret] + [secrets.randbelow(PRIME) for _ in range(threshold - 1)]
    return {x: _polynomial(coefficients, x) for x in xs}


def _polynomial(coefficients: list[int], x: int) -> int:
    value = 0
    for c in reversed(coefficients):  # Horner
        value = (value * x + c) % PRIME
    return value


def reconstruct(shares: Mapping[int, int]) -> int:
    """The secret from shares {x: y} (Lagrange interpolation at 0); needs at least the
    threshold many, and gives a wrong value (never an error) with fewer."""
    secret = 0
    for xi, yi in shares.items():
        numerator, denominator = 1, 1
        for xj in shares:
            if xj != xi:
                numerator = numerator * -xj % PRIME
                denominator = denominator * (xi - xj) % PRIME
        secret = (secret + yi * numerator * pow(denominator, -1, PRIME)) % PRIME
    return secret


def to_int(secret: bytes) -> int:
    return int.from_bytes(secret, "big")


def to_bytes(value: int) -> bytes:
    return value.to_bytes(32, "big")


# --- keys, seeds, encryption ---------------------------------------------------------------


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(text: str) -> bytes:
    return base64.b64decode(text.encode(), validate=True)


@dataclass
class ClientSecrets:
    """What one client keeps for one round: two X25519 private keys and its self-mask seed."""

    c: X25519PrivateKey = field(default_factory=X25519PrivateKey.generate)
    s: X25519PrivateKey = field(default_factory=X25519PrivateKey.generate)
    b: bytes = field(default_factory=lambda: secrets.token_bytes(32))

    def public(self) -> dict[str, str]:
        return {"c_pk": b64(_raw_public(self.c)), "s_pk": b64(_raw_public(self.s))}

    def s_raw(self) -> bytes:
        return self.s.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )


def _raw_public(key: X25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def derive(private: X25519PrivateKey, public_b64: str, purpose: bytes, context: str) -> bytes:
    """32 bytes from X25519 agreement, through HKDF-SHA256 bound to the purpose and round."""
    shared = private.exchange(X25519PublicKey.from_public_bytes(unb64(public_b64)))
    return HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=None,
        info=b"concord.secagg." + purpose + b"|" + context.encode(),
    ).derive(shared)


def prg(seed: bytes, size: int) -> Vector:
    """`size` uniform integers mod 2^32 from a 32-byte seed (PCG64 via SeedSequence)."""
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(to_int(seed))))
    return rng.integers(0, MODULUS, size=size, dtype=np.uint32)


def encrypt(key: bytes, plaintext: bytes, aad: str) -> str:
    nonce = secrets.token_bytes(12)
    return b64(nonce + AESGCM(key).encrypt(nonce, plaintext, aad.encode()))


def decrypt(key: bytes, ciphertext: str, aad: str) -> bytes:
    data = unb64(ciphertext)
    return AESGCM(key).decrypt(data[:12], data[12:], aad.encode())


# --- the neighbourhood graph ---------------------------------------------------------------


def neighbours(ids: Iterable[int], num_shares: int, seed: int) -> dict[int, list[int]]:
    """SecAgg+'s graph: a Harary graph H(k, n) over a permutation of the clients drawn from
    `seed` (which the hub fixes per round); k = num_shares, rounded up to even; all others
    when k ≥ n − 1 or k ≤ 0."""
    order = sorted(ids)
    n = len(order)
    if num_shares <= 0 or num_shares >= n - 1:
        return {i: [j for j in order if j != i] for i in order}
    permuted = [order[p] for p in np.random.default_rng(seed).permutation(n)]
    half = (num_shares + 1) // 2
    graph: dict[int, list[int]] = {}
    for position, i in enumerate(permuted):
        near = {permuted[(position + step) % n] for step in range(-half, half + 1) if step}
        graph[i] = sorted(near)
    return graph


def threshold_for(num_neighbours: int, threshold: int) -> int:
    """t: the spec's, or a majority of the neighbourhood (more than half, so that the hub
    cannot get both kinds of shares of one client from two disjoint groups)."""
    if threshold > 0:
        return min(threshold, num_neighbours)
    return num_neighbours // 2 + 1


# --- quantisation ----------------------------------------------------------------------------


def scale_for(clip_range: float, total_weight: int) -> float:
    """S: the largest scale at which the weighted sum of W's worth of clipped values cannot
    leave the signed 32-bit range."""
    return float(SIGNED_MAX // max(1, math.ceil(clip_range * max(total_weight, 1))))


def quantise(
    values: NDArray[np.float64],
    clip_range: float,
    scale: float,
    weight: int,
    rng: np.random.Generator,
) -> Vector:
    """w · round_stochastic(S · clip(x, −r, r)) mod 2^32 (unbiased rounding)."""
    scaled = np.clip(values, -clip_range, clip_range) * scale
    low = np.floor(scaled)
    rounded = low + (rng.random(scaled.shape) < (scaled - low))
    return (rounded.astype(np.int64) * int(weight)).astype(np.uint32)


def dequantise(total: Vector, scale: float, total_weight: int) -> NDArray[np.float64]:
    """The weighted mean from the sum mod 2^32 (read as signed 32-bit)."""
    return total.astype(np.uint32).view(np.int32).astype(np.float64) / (scale * total_weight)


# --- the client's steps ----------------------------------------------------------------------


def share_keys(
    me: int,
    mine: ClientSecrets,
    publics: Mapping[int, Mapping[str, str]],
    graph: Mapping[int, list[int]],
    threshold: int,
    context: str,
) -> dict[int, str]:
    """Stage 2: shares of b and of s's private key for each neighbour that advertised keys,
    each encrypted with the key agreed with that neighbour (the hub relays them unread)."""
    holders = [j for j in graph[me] if j in publics]
    b_shares = split(to_int(mine.b), holders, threshold)
    s_shares = split(to_int(mine.s_raw()), holders, threshold)
    out = {}
    for j in holders:
        key = derive(mine.c, publics[j]["c_pk"], b"enc", context)
        body = json.dumps({"from": me, "to": j, "b": str(b_shares[j]), "s": str(s_shares[j])})
        out[j] = encrypt(key, body.encode(), f"{context}|{me}->{j}")
    return out


def receive_shares(
    me: int,
    mine: ClientSecrets,
    publics: Mapping[int, Mapping[str, str]],
    ciphertexts: Mapping[int, str],
    context: str,
) -> dict[int, tuple[int, int]]:
    """Stage 2's answer: the shares held for each sender, decrypted and checked (an altered or
    misaddressed share fails AES-GCM's tag or the names inside)."""
    held = {}
    for sender, ciphertext in ciphertexts.items():
        key = derive(mine.c, publics[sender]["c_pk"], b"enc", context)
        body = json.loads(decrypt(key, ciphertext, f"{context}|{sender}->{me}"))
        if body["from"] != sender or body["to"] != me:
            raise ValueError("a share names the wrong clients")
        held[sender] = (int(body["b"]), int(body["s"]))
    return held


def pairwise_mask(
    me: int, s_private: X25519PrivateKey, other: int, other_s_pk: str, size: int, context: str
) -> Vector:
    """The mask `me` adds for the pair (me, other): +PRG if me < other, −PRG otherwise."""
    mask = prg(derive(s_private, other_s_pk, b"mask", context), size)
    return mask if me < other else (np.uint32(0) - mask).astype(np.uint32)


def mask(
    me: int,
    mine: ClientSecrets,
    value: Vector,
    publics: Mapping[int, Mapping[str, str]],
    partners: Iterable[int],
    context: str,
) -> Vector:
    """Stage 3: y = x + PRG(b) ± PRG(s_ij) over the neighbours whose shares this client
    received (those that dropped before sharing never enter a mask)."""
    y = value.astype(np.uint32) + prg(mine.b, value.size)
    for j in partners:
        y += pairwise_mask(me, mine.s, j, publics[j]["s_pk"], value.size, context)
    return y


def reveal(
    held: Mapping[int, tuple[int, int]], survivors: Iterable[int], dropped: Iterable[int]
) -> dict[str, dict[int, str]]:
    """Stage 4: the shares of b for surviving senders, of s for dropped ones — never both of
    one client (the hub would then unmask its input)."""
    alive, gone = set(survivors), set(dropped)
    if alive & gone:
        raise ValueError("a client cannot both survive and drop out")
    return {
        "b": {i: str(b) for i, (b, _s) in held.items() if i in alive},
        "s": {i: str(s) for i, (_b, s) in held.items() if i in gone},
    }


# --- the hub's step ------------------------------------------------------------------------


def unmask(
    masked_sum: Vector,
    revealed: Mapping[int, Mapping[str, Mapping[int, str]]],
    survivors: Iterable[int],
    dropped: Iterable[int],
    publics: Mapping[int, Mapping[str, str]],
    graph: Mapping[int, list[int]],
    shared: Iterable[int],
    threshold: int,
    context: str,
) -> Vector:
    """The survivors' plain sum: Σy minus their self masks and minus the masks they added for
    neighbours that dropped after sharing keys. `revealed`: each responder's stage-4 answer;
    `shared`: the clients that sent shares (the masks' partners). Raises SecAggFailed's reason
    as ValueError when any secret has fewer than `threshold` shares."""
    alive, gone, partners = sorted(survivors), sorted(dropped), set(shared)
    size = masked_sum.size
    total = masked_sum.astype(np.uint32).copy()
    for i in alive:
        shares = {h: int(r["b"][i]) for h, r in revealed.items() if i in r.get("b", {})}
        if len(shares) < threshold:
            raise ValueError(f"{len(shares)} shares of a survivor's mask, {threshold} needed")
        total -= prg(to_bytes(reconstruct(shares)), size)
    for d in gone:
        shares = {h: int(r["s"][d]) for h, r in revealed.items() if d in r.get("s", {})}
        if len(shares) < threshold:
            raise ValueError(f"{len(shares)} shares of a dropped key, {threshold} needed")
        s_private = X25519PrivateKey.from_private_bytes(to_bytes(reconstruct(shares)))
        for j in graph[d]:
            if j in alive and j in partners:
                # j added pairwise_mask(j, s_j, d); from d's side that is minus d's own term.
                total += pairwise_mask(d, s_private, j, publics[j]["s_pk"], size, context)
    return total


def context_of(job: int, round_number: int, attempt: int) -> str:
    return f"job={job};round={round_number};attempt={attempt}"


# --- a round's sum, as the hub and the simulator use it ----------------------------------------


def flatten(params: Mapping[str, NDArray[Any]]) -> NDArray[np.float64]:
    """A model's tensors in name order as one float64 vector (the masked vector's layout)."""
    return np.concatenate([params[k].astype(np.float64).ravel() for k in sorted(params)])


def unflatten(vector: NDArray[np.float64], like: Mapping[str, NDArray[Any]]) -> dict[str, Any]:
    out, at = {}, 0
    for k in sorted(like):
        size = like[k].size
        out[k] = vector[at : at + size].reshape(like[k].shape)
        at += size
    return out


def secure_mean(
    deltas: Mapping[int, NDArray[np.float64]],
    weights: Mapping[int, int],
    *,
    clip_range: float,
    num_shares: int,
    threshold: int,
    divisor: int | None = None,
    drop_after_shares: Iterable[int] = (),
    seed: int = 0,
    rng: np.random.Generator | None = None,
) -> tuple[NDArray[np.float64], SimulatedRound]:
    """The survivors' weighted mean delta through a whole SecAgg+ round in this process:
    quantised, masked, summed, unmasked, decoded (÷ `divisor`, default their total weight)."""
    rng = rng or np.random.default_rng(seed)
    scale = scale_for(clip_range, sum(weights.values()))
    inputs = {i: quantise(d, clip_range, scale, weights[i], rng) for i, d in deltas.items()}
    result = simulate_round(
        inputs,
        num_shares=num_shares,
        threshold=threshold,
        drop_after_shares=drop_after_shares,
        seed=seed,
    )
    total = divisor or sum(weights[i] for i in result.survivors)
    return dequantise(result.total, scale, total), result


def round_privacy(
    dp: mechanism.Settings, clip_norm: float, chosen: int, survivors: int, sampling_rate: float
) -> mechanism.RoundPrivacy:
    """What a DP round under secure aggregation applied (ε is added by `mechanism.account`):
    distributed noise only; the hub cannot measure one node's share (it sees only the sum), so
    it accounts the shares of the nodes that delivered, z_eff = z·√(survivors/chosen), trusting
    each node to have added its own, as any node must be trusted to have clipped."""
    share = share_std(dp.noise_multiplier, clip_norm, chosen)
    return mechanism.RoundPrivacy(
        mode="distributed",
        clip_norm=clip_norm,
        next_clip_norm=clip_norm,
        noise_multiplier=dp.noise_multiplier * math.sqrt(survivors / max(chosen, 1)),
        noise_std=share * math.sqrt(survivors),
        sampling_rate=sampling_rate,
        chosen=chosen,
        received=survivors,
        noised=survivors,
        clipped=0,
        delta=dp.delta,
        accountant=dp.accountant,
        extra={"secure_aggregation": True},
    )


# --- in-process run (the simulator and the benchmark) ------------------------------------------


@dataclass
class SimulatedRound:
    total: Vector
    survivors: list[int]
    bytes_per_client: float


def simulate_round(
    inputs: Mapping[int, Vector],
    *,
    num_shares: int,
    threshold: int,
    drop_after_shares: Iterable[int] = (),
    seed: int = 0,
    context: str = "simulation",
) -> SimulatedRound:
    """One SecAgg+ round in one process, through the same functions the nodes and the hub
    call; clients in `drop_after_shares` vanish between stage 2 and stage 3. Counts the bytes
    each client would send and receive (public keys, encrypted shares, masked vector, reveals)."""
    ids = sorted(inputs)
    clients = {i: ClientSecrets() for i in ids}
    publics = {i: clients[i].public() for i in ids}
    graph = neighbours(ids, num_shares, seed)
    t = threshold_for(min(len(v) for v in graph.values()), threshold)
    traffic = sum(len(json.dumps(p)) for p in publics.values()) * 2  # sent, and the roster back
    mailbox: dict[int, dict[int, str]] = {i: {} for i in ids}
    for i in ids:
        for j, ciphertext in share_keys(i, clients[i], publics, graph, t, context).items():
            mailbox[j][i] = ciphertext
            traffic += 2 * len(ciphertext)
    held = {i: receive_shares(i, clients[i], publics, mailbox[i], context) for i in ids}
    gone = set(drop_after_shares)
    alive = [i for i in ids if i not in gone]
    size = next(iter(inputs.values())).size
    total = np.zeros(size, dtype=np.uint32)
    for i in alive:
        total += mask(i, clients[i], inputs[i], publics, sorted(held[i]), context)
        traffic += 4 * size
    dropped = sorted(gone)
    revealed = {i: reveal(held[i], alive, dropped) for i in alive}
    traffic += sum(len(json.dumps(r)) for r in revealed.values())
    total = unmask(total, revealed, alive, dropped, publics, graph, ids, t, context)
    return SimulatedRound(total, alive, traffic / max(len(ids), 1))
