"""Print the provenance API's OpenAPI document (FastAPI generates it from provenance/app.py):
`python -m provenance.openapi > docs/provenance-api.yaml`. A test checks the committed file
is what the server serves."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from provenance.app import create_app


def document() -> dict:
    return create_app(Path("warehouse.duckdb")).openapi()


if __name__ == "__main__":
    yaml.safe_dump(document(), sys.stdout, sort_keys=False, allow_unicode=True)
