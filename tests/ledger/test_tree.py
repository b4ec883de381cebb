"""RFC 9162 hashing and proofs: the published test vectors, and agreement of the stored-node
versions with the RFC's plain recursive definitions."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from concord.ledger import tree

# Certificate Transparency's reference leaves and results (RFC 6962 test vectors, as published
# in google/certificate-transparency's merkle_tree_test.cc and transparency-dev/merkle's
# testonly/constants.go).
LEAVES = [
    bytes.fromhex(h)
    for h in [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
]
ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
INCLUSION = [
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]
CONSISTENCY = [
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]
HASHES = [tree.leaf_hash(x) for x in LEAVES]


def _store(leaves: list[bytes]) -> dict[tuple[int, int], bytes]:
    nodes = {}
    level = 0
    while (1 << level) <= len(leaves):
        size = 1 << level
        for i in range(len(leaves) // size):
            nodes[(level, i)] = tree.mth(leaves[i * size : (i + 1) * size])
        level += 1
    return nodes


def test_roots_match_the_published_vectors() -> None:
    for n, expected in enumerate(ROOTS):
        assert tree.mth(HASHES[:n]).hex() == expected
        assert tree.root_from_leaves(HASHES[:n])[1].hex() == expected
    assert tree.EMPTY_ROOT.hex() == ROOTS[0]


def test_inclusion_vectors() -> None:
    nodes = _store(HASHES)
    for index, size, expected in INCLUSION:
        assert [p.hex() for p in tree.path(index, HASHES[:size])] == expected
        stored = [
            tree.range_hash(s, n, lambda lv, i: nodes[(lv, i)])
            for s, n in tree.inclusion_ranges(index, size)
        ]
        assert [p.hex() for p in stored] == expected
        assert tree.verify_inclusion(
            HASHES[index],
            index,
            size,
            [bytes.fromhex(p) for p in expected],
            bytes.fromhex(ROOTS[size]),
        )


def test_consistency_vectors() -> None:
    nodes = _store(HASHES)
    for first, second, expected in CONSISTENCY:
        assert [p.hex() for p in tree.proof(first, HASHES[:second])] == expected
        stored = [
            tree.range_hash(s, n, lambda lv, i: nodes[(lv, i)])
            for s, n in tree.consistency_ranges(first, second)
        ]
        assert [p.hex() for p in stored] == expected
        assert tree.verify_consistency(
            first,
            second,
            bytes.fromhex(ROOTS[first]),
            bytes.fromhex(ROOTS[second]),
            [bytes.fromhex(p) for p in expected],
        )


def test_verification_rejects_wrong_proofs() -> None:
    index, size, expected = INCLUSION[1]
    proof = [bytes.fromhex(p) for p in expected]
    root = bytes.fromhex(ROOTS[size])
    assert not tree.verify_inclusion(HASHES[index], index + 1, size, proof, root)
    assert not tree.verify_inclusion(HASHES[index], index, size - 2, proof, root)
    assert not tree.verify_inclusion(HASHES[index + 1], index, size, proof, root)
    assert not tree.verify_inclusion(HASHES[index], index, size, proof[:-1], root)
    assert not tree.verify_inclusion(HASHES[index], index, size, [*proof, root], root)
    first, second, consistency = CONSISTENCY[2]
    c = [bytes.fromhex(p) for p in consistency]
    r1, r2 = bytes.fromhex(ROOTS[first]), bytes.fromhex(ROOTS[second])
    assert not tree.verify_consistency(first, second, r2, r2, c)
    assert not tree.verify_consistency(first - 1, second, r1, r2, c)
    assert not tree.verify_consistency(first, second, r1, r2, c[::-1])
    assert not tree.verify_consistency(second, first, r2, r1, c)


@given(st.integers(min_value=1, max_value=200), st.data())
def test_stored_node_proofs_equal_the_plain_definitions(n: int, data) -> None:
    leaves = [tree.leaf_hash(i.to_bytes(4, "big")) for i in range(n)]
    nodes = _store(leaves)
    lookup = lambda lv, i: nodes[(lv, i)]  # noqa: E731
    m = data.draw(st.integers(min_value=0, max_value=n - 1))
    path = [tree.range_hash(s, z, lookup) for s, z in tree.inclusion_ranges(m, n)]
    assert path == tree.path(m, leaves)
    assert tree.verify_inclusion(leaves[m], m, n, path, tree.mth(leaves))
    first = data.draw(st.integers(min_value=1, max_value=n))
    proof = [tree.range_hash(s, z, lookup) for s, z in tree.consistency_ranges(first, n)]
    assert proof == tree.proof(first, leaves)
    assert tree.verify_consistency(first, n, tree.mth(leaves[:first]), tree.mth(leaves), proof)
