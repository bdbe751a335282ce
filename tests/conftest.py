import os
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Airflow reads its home at import time: keep it inside the project, never in ~/airflow.
os.environ.setdefault("AIRFLOW_HOME", str(ROOT / ".airflow"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(ROOT / "dags"))
# A failing task in a test should fail the test now, not after a retry delay.
os.environ.setdefault("TRIBUTARY_TASK_RETRIES", "0")
# Statement mails to a server that is not there (tests that close a month with no mail server)
# should not wait out the production backoff.
os.environ.setdefault("TRIBUTARY_DELIVERY_BACKOFF_S", "0.05")
# dag.test() cannot finish a run of a DAG with a deadline alert (dags/_common.close_deadline);
# tests/test_multiworker.py turns it on for its real scheduler and triggerer.
os.environ.setdefault("TRIBUTARY_CLOSE_DEADLINE", "off")

# Under pytest-xdist (`make test` runs one worker per core) every worker gets its own Airflow
# home: two dag.test() runs writing one SQLite metadata database at once lock each other out.
# Each session's worker home starts as a fresh copy of the migrated one (`make install`:
# migrations, the warehouse writers' pool), which costs nothing, where `airflow db migrate`
# costs half a minute; fresh, so runs left by an earlier session never meet this one's (as on
# CI's clean clone). One intra-op thread per worker: the workers already fill the cores, and
# tests that pin threads for reproducibility pin 1 anyway.
_worker = os.environ.get("PYTEST_XDIST_WORKER")
if _worker:
    shared_home = Path(os.environ["AIRFLOW_HOME"])
    home = shared_home / "xdist" / _worker
    home.mkdir(parents=True, exist_ok=True)
    source = shared_home / "airflow.db"
    if source.exists():
        shutil.copyfile(source, home / "airflow.db")
    os.environ["AIRFLOW_HOME"] = str(home)
    os.environ.setdefault("OMP_NUM_THREADS", "1")

sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(scope="session")
def audio_sandbox(tmp_path_factory):
    """Catalog audio, a tiny diffusion model version and a two-day generation log of the audio
    sandbox platform (sandbox.audio_platform.build_audio_sandbox): (home, built, records)."""
    import json

    from audio_fixtures import AUDIO_CFG

    from sandbox.audio_platform import build_audio_sandbox

    home = tmp_path_factory.mktemp("audio-home")
    built = build_audio_sandbox(home, AUDIO_CFG)
    records = [json.loads(x) for x in built["log_path"].read_text().splitlines()]
    return home, built, records


@pytest.fixture(scope="session")
def kill_stages(tmp_path_factory):
    """The prepared months of the crash-safety tests (tests/kill_states.py), built on first use."""
    from kill_states import Stages

    return Stages(tmp_path_factory.mktemp("kill-stages"))


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models gain nothing from intra-op threads, and on a busy 2-core machine a second
    thread made training ~10x slower (measured). Restored so other modules are unaffected.
    A module asks for it with pytestmark = pytest.mark.usefixtures("one_torch_thread")."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
