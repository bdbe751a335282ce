import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Airflow reads its home at import time: keep it inside the project, never in ~/airflow.
os.environ.setdefault("AIRFLOW_HOME", str(ROOT / ".airflow"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(ROOT / "dags"))
# A failing task in a test should fail the test now, not after a retry delay.
os.environ.setdefault("TRIBUTARY_TASK_RETRIES", "0")
sys.path.insert(0, str(Path(__file__).resolve().parent))
