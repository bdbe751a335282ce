"""How long Airflow takes to parse each DAG file, and what parsing imports.

Each file is parsed in a fresh process that has already imported Airflow, as the
dag-processor's per-file processes have: the number is what the file itself costs. Heavy
modules (torch, pandas, pyarrow, duckdb, reportlab, the project's libraries) must not be
imported at parse time; the tasks import them when they run.

    .venv/bin/python benchmarks/dag_parse.py          # a table
    .venv/bin/python benchmarks/dag_parse.py --json   # one JSON line (tests/test_operations.py)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "pandas", "pyarrow", "duckdb", "reportlab", "matplotlib", "attribution", "settlement", "sandbox")

ONE = """
import json, sys, time
sys.path.insert(0, {dags!r})
from airflow.dag_processing.dagbag import DagBag
import airflow.sdk, airflow.providers.smtp.notifications.smtp, airflow.providers.standard.operators.hitl  # noqa
before = set(sys.modules)
t0 = time.perf_counter()
bag = DagBag(dag_folder={path!r})
seconds = time.perf_counter() - t0
new = set(sys.modules) - before
heavy = sorted({{m.split('.')[0] for m in new if m.split('.')[0] in {heavy!r}}})
print(json.dumps({{"seconds": seconds, "dags": len(bag.dags), "tasks": sum(len(d.tasks) for d in bag.dags.values()),
                  "errors": {{k: v.splitlines()[-1] for k, v in bag.import_errors.items()}}, "heavy": heavy}}))
"""


def parse(path: Path) -> dict:
    env = dict(os.environ, AIRFLOW__CORE__LOAD_EXAMPLES="False", AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "dags"))
    env.setdefault("AIRFLOW_HOME", str(ROOT / ".airflow"))
    code = ONE.format(dags=str(ROOT / "dags"), path=str(path), heavy=HEAVY)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    files = sorted(p for p in (ROOT / "dags").glob("*.py") if not p.name.startswith("_"))
    report = {p.name: parse(p) for p in files}
    if "--json" in sys.argv:
        print(json.dumps(report))
        return
    print(f"{'DAG file':32} {'parse s':>8} {'tasks':>6}  heavy imports")
    for name, r in report.items():
        print(f"{name:32} {r['seconds']:8.3f} {r['tasks']:6d}  {', '.join(r['heavy']) or '-'}")


if __name__ == "__main__":
    main()
