"""How long Airflow takes to parse each DAG file, and what parsing imports.

Each file is parsed in a fresh process that has already imported Airflow, as the
dag-processor's per-file processes have: the number is what the file itself costs. Heavy
modules (torch, pandas, pyarrow, duckdb, reportlab, the project's libraries) must not be
imported at parse time; the tasks import them when they run.

    .venv/bin/python benchmarks/dag_parse.py                   # a table
    .venv/bin/python benchmarks/dag_parse.py --against 38882e7 # and that revision's files, side by side
    .venv/bin/python benchmarks/dag_parse.py --json            # one JSON line (tests/test_operations.py)
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
sys.path.insert(1, {root!r})
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
    env = dict(os.environ, AIRFLOW__CORE__LOAD_EXAMPLES="False", AIRFLOW__CORE__DAGS_FOLDER=str(path.parent))
    env.setdefault("AIRFLOW_HOME", str(ROOT / ".airflow"))
    code = ONE.format(dags=str(path.parent), root=str(ROOT), path=str(path), heavy=HEAVY)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _revision_dags(rev: str) -> Path:
    import tarfile
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="dags-"))
    archive = subprocess.run(["git", "archive", rev, "dags"], cwd=ROOT, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=__import__("io").BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")
    return folder / "dags"


def main() -> None:
    files = sorted(p for p in (ROOT / "dags").glob("*.py") if not p.name.startswith("_"))
    report = {p.name: parse(p) for p in files}
    if "--json" in sys.argv:
        print(json.dumps(report))
        return
    before = {}
    if "--against" in sys.argv:
        rev = sys.argv[sys.argv.index("--against") + 1]
        old = _revision_dags(rev)
        before = {p.name: parse(p) for p in sorted(old.glob("*.py")) if not p.name.startswith("_")}
    print(f"{'DAG file':28} {'parse s':>8} {'tasks':>6}  heavy imports" + (f"   | {'before s':>8}  ratio  heavy before" if before else ""))
    for name, r in report.items():
        line = f"{name:28} {r['seconds']:8.3f} {r['tasks']:6d}  {', '.join(r['heavy']) or '-':14}"
        if name in before:
            b = before[name]
            line += f" | {b['seconds']:8.3f}  {b['seconds'] / r['seconds']:5.0f}x  {', '.join(b['heavy']) or '-'}"
        print(line)


if __name__ == "__main__":
    main()
