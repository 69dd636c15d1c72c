"""The node contract (tests/contract/node_contract.json) holds on a real server, on every supported ComfyUI.

To add a node to the contract deliberately: INSTAFLOW_UPDATE_CONTRACT=1 bash scripts/test.sh tests/test_node_contract.py
rewrites the file from the server; review the diff before committing it.
"""
import json
import os
from pathlib import Path

import pytest

from devtools.node_contract import contract_of

pytestmark = pytest.mark.oldest

CONTRACT_FILE = Path(__file__).parent / "contract" / "node_contract.json"


@pytest.fixture(scope="module")
def served(comfy_server):
    served = contract_of(comfy_server.object_info())
    if os.environ.get("INSTAFLOW_UPDATE_CONTRACT"):
        CONTRACT_FILE.write_text(json.dumps(served, indent=1, sort_keys=True) + "\n")
    return served


@pytest.fixture(scope="module")
def contract():
    return json.loads(CONTRACT_FILE.read_text())


def test_every_contracted_node_is_served_unchanged(served, contract):
    for node_id, promised in contract.items():
        assert node_id in served, f"{node_id} is gone"
        assert served[node_id] == promised, f"{node_id} changed:\nserved  {json.dumps(served[node_id], sort_keys=True)}\n" \
                                            f"promised {json.dumps(promised, sort_keys=True)}"


def test_every_pack_node_is_in_the_contract(served, contract):
    assert sorted(set(served) - set(contract)) == []
